package main

// The NFC data path (/nfc/<lease>/<file>) and the test control endpoint (/_test/).
//
// Downloads (GET/HEAD on export leases) take one of three shapes (-nfc-download):
//
//	length   like any static file server: 206 with Content-Range for a satisfiable range,
//	         Content-Length always. A whole-file GET, or one from an offset on
//	         (`Range: bytes=N-`, what a resuming client sends), is sent with sendfile(2) a few
//	         MiB at a time, the meter checked between pieces, so the simulator spends little CPU
//	         on this 2-core machine where the benchmarks run it beside the client they measure;
//	         anything else (HEAD, If-Range, other range forms) goes through http.ServeContent.
//	chunked  Transfer-Encoding: chunked and no Content-Length, as an ESXi host streams a
//	         streamOptimized VMDK whose size it does not know in advance.
//	close    neither Content-Length nor chunking: the body ends when the server closes the
//	         connection (HTTP/1.0 style, "Connection: close").
//
// In chunked and close mode a single range (`bytes=A-B`, `bytes=A-`, `bytes=-N`) is still
// answered 206 with Content-Range (but no Content-Length), an unsatisfiable one 416; several
// ranges, a malformed header or any If-Range get the whole file with 200. Whether a real ESXi
// honours Range on an export stream is not documented anywhere we could find: assumed.
//
// Uploads (PUT/POST on import leases) are written to <data-dir>/uploads/<lease>/<file>,
// replacing any earlier upload of the same file.
//
// A device URL serves only while its lease is ready. When the lease leaves that state (complete,
// abort, timeout, server abort), new requests get 404 and transfers in flight are cut: the
// reader/writer fails on its next call, and the connections are closed so that even a transfer
// blocked on a full socket buffer ends at once.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var errLeaseClosed = errors.New("the NFC lease is no longer ready")

func uploadPath(leaseID, name string) string {
	return filepath.Join(cfg.dataDir, "uploads", leaseID, name)
}

func serveNFC(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/nfc/"), "/")
	if len(parts) != 2 {
		http.NotFound(w, r)
		return
	}
	l := lookupLease(parts[0])
	if l == nil {
		log.Printf("nfc: %s %s: no such lease", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)

	var dev *leaseDevice
	var state types.HttpNfcLeaseState
	simulator.Map.WithLock(l, func() {
		state = l.State
		if state != types.HttpNfcLeaseStateReady {
			return
		}
		dev = l.device(parts[1])
		if dev != nil && conn != nil {
			l.conns[conn]++
		}
	})
	if dev == nil {
		log.Printf("nfc: %s %s: refused (lease %s, device %q)", r.Method, r.URL.Path, state, parts[1])
		http.NotFound(w, r)
		return
	}
	defer simulator.Map.WithLock(l, func() {
		if conn == nil {
			return
		}
		if l.conns[conn]--; l.conns[conn] <= 0 {
			delete(l.conns, conn)
		}
	})

	switch {
	case l.kind == exportLease && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		download(w, r, l, dev, conn)
	case l.kind == importLease && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		upload(w, r, l, dev, conn)
	default:
		http.Error(w, "method not allowed on a "+string(l.kind)+" lease", http.StatusMethodNotAllowed)
	}
}

// meter is shared by downloads and uploads: it stops a transfer once the lease is no longer
// ready, counts bytes, and enforces -abort-after-bytes.
type meter struct {
	l    *nfcLease
	conn net.Conn
}

// allow trims a buffer to what -abort-after-bytes still permits; at the limit it aborts the lease.
func (m *meter) allow(p []byte) ([]byte, error) {
	n, err := m.allowN(int64(len(p)))
	return p[:n], err
}

// allowN is allow for a count of bytes: how many of n may go through now.
func (m *meter) allowN(n int64) (int64, error) {
	if atomic.LoadInt32(&m.l.open) == 0 {
		return 0, errLeaseClosed
	}
	if cfg.abortAfterBytes <= 0 {
		return n, nil
	}
	left := cfg.abortAfterBytes - atomic.LoadInt64(&m.l.transferred)
	if left <= 0 {
		// Close this connection too: a real server drops the stream, the client must not wait.
		simulator.Map.WithLock(m.l, func() { m.l.serverAbort("-abort-after-bytes reached", nil) })
		return 0, errLeaseClosed
	}
	if n > left {
		n = left
	}
	return n, nil
}

func (m *meter) count(n int) {
	total := atomic.AddInt64(&m.l.transferred, int64(n))
	if cfg.nfcRate <= 0 || n <= 0 {
		return
	}
	// -nfc-rate: sleep until the lease's bytes so far are due at that rate.
	now := time.Now().UnixNano()
	atomic.CompareAndSwapInt64(&m.l.firstByte, 0, now)
	due := atomic.LoadInt64(&m.l.firstByte) + int64(float64(total)/float64(cfg.nfcRate)*1e9)
	if due > now {
		time.Sleep(time.Duration(due - now))
	}
}

// meteredReader reads through a meter: an upload's body, or (in a meteredFile) a served disk.
type meteredReader struct {
	io.Reader
	m *meter
}

func (r *meteredReader) Read(p []byte) (int, error) {
	p, err := r.m.allow(p)
	if err != nil {
		return 0, err
	}
	n, err := r.Reader.Read(p)
	r.m.count(n)
	return n, err
}

// meteredFile is a metered file that can also seek, as http.ServeContent needs for ranges.
type meteredFile struct {
	meteredReader
	io.Seeker
}

func download(w http.ResponseWriter, r *http.Request, l *nfcLease, dev *leaseDevice, conn net.Conn) {
	f, err := os.Open(dev.path)
	if err != nil {
		log.Printf("nfc: %s: %s", r.URL.Path, err)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Set explicitly so ServeContent does not read the first 512 bytes to sniff a type.
	w.Header().Set("Content-Type", "application/octet-stream")
	log.Printf("nfc: %s %s (%s) range=%q", r.Method, r.URL.Path, dev.path, r.Header.Get("Range"))
	m := &meter{l: l, conn: conn}
	if cfg.nfcDownload != "length" {
		streamFile(w, r, f, st.Size(), m)
		return
	}
	if start, ok := plainGetFrom(r, st.Size()); ok {
		sendFrom(w, f, start, st.Size(), r.Header.Get("Range") != "", m)
		return
	}
	http.ServeContent(w, r, dev.name, st.ModTime(), &meteredFile{meteredReader{Reader: f, m: m}, f})
}

// plainGetFrom tells whether r is a GET that sendFrom can answer (no Range, or `bytes=N-` with N
// inside the file, and no conditional header) and from which offset.
func plainGetFrom(r *http.Request, size int64) (int64, bool) {
	if r.Method != http.MethodGet || r.Header.Get("If-Range") != "" || r.Header.Get("If-None-Match") != "" ||
		r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-Match") != "" ||
		r.Header.Get("If-Unmodified-Since") != "" {
		return 0, false
	}
	rng := r.Header.Get("Range")
	if rng == "" {
		return 0, true
	}
	spec := strings.TrimPrefix(rng, "bytes=")
	if spec == rng || !strings.HasSuffix(spec, "-") {
		return 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSuffix(spec, "-"), 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, false
	}
	return start, true
}

// sendPiece is what sendFrom hands to sendfile(2) between two checks of the meter.
const sendPiece = 4 << 20

// sendFrom answers a GET of the file from start to its end: 200 for the whole file, 206 with
// Content-Range from an offset. io.CopyN of an *os.File into the response reaches the TCP
// connection's ReadFrom, which uses sendfile(2).
func sendFrom(w http.ResponseWriter, f *os.File, start, size int64, ranged bool, m *meter) {
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(size-start, 10))
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	for left := size - start; left > 0; {
		n, err := m.allowN(min64(left, sendPiece))
		if err != nil {
			return
		}
		sent, err := io.CopyN(w, f, n)
		m.count(int(sent))
		left -= sent
		if err != nil {
			return
		}
	}
}

// streamFile answers a GET or HEAD without Content-Length: chunked, or ended by closing the
// connection, per -nfc-download. A transfer the meter stops is cut (cutTransfer), never ended
// the normal way, which in either framing would make the part sent look like the whole.
func streamFile(w http.ResponseWriter, r *http.Request, f *os.File, size int64, m *meter) {
	h := w.Header()
	start, end, status := int64(0), size-1, http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && r.Header.Get("If-Range") == "" {
		a, b, ok, satisfiable := parseSingleRange(rng, size)
		switch {
		case ok && !satisfiable:
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			http.Error(w, "requested range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		case ok:
			start, end, status = a, b, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, size))
		}
	}
	if cfg.nfcDownload == "chunked" {
		h.Set("Transfer-Encoding", "chunked")
	} else {
		// net/http's spelling of "no framing": no chunking, close after the body (server.go,
		// chunkWriter.writeHeader).
		h.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		cutTransfer(m.conn)
		return
	}
	buf := make([]byte, streamPiece)
	sent := int64(0)
	for left := end - start + 1; left > 0; {
		if cfg.nfcShortBody > 0 && sent >= cfg.nfcShortBody {
			// -nfc-short-body: end the body the normal way (closing the connection in close mode,
			// the last chunk in chunked mode) with the lease still ready, as a cut a client cannot
			// tell from the end.
			log.Printf("nfc: %s: ended after %d bytes (-nfc-short-body)", r.URL.Path, sent)
			return
		}
		n, err := m.allowN(min64(left, streamPiece))
		if err != nil {
			cutTransfer(m.conn)
			return
		}
		k, err := io.ReadFull(f, buf[:n])
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return
			}
			m.count(k)
			left -= int64(k)
			sent += int64(k)
		}
		if err != nil {
			log.Printf("nfc: %s: %s", r.URL.Path, err)
			cutTransfer(m.conn)
			return
		}
	}
}

// streamPiece is the size of each write in chunked and close mode (one chunk each, in chunked
// mode).
const streamPiece = 64 << 10

// parseSingleRange reads a Range header of one byte range. ok is false when the header is to be
// ignored (not bytes, several ranges, malformed); satisfiable is false when it asks for nothing
// inside the file.
func parseSingleRange(header string, size int64) (start, end int64, ok, satisfiable bool) {
	spec := strings.TrimSpace(strings.TrimPrefix(header, "bytes="))
	if spec == header || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	dash := strings.IndexByte(spec, '-')
	if dash < 0 {
		return 0, 0, false, false
	}
	first, last := strings.TrimSpace(spec[:dash]), strings.TrimSpace(spec[dash+1:])
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return size - min64(n, size), size - 1, true, true
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, 0, false, false
		}
		b = min64(b, size-1)
	}
	if a >= size {
		return 0, 0, true, false
	}
	return a, b, true, true
}

func upload(w http.ResponseWriter, r *http.Request, l *nfcLease, dev *leaseDevice, conn net.Conn) {
	if err := os.MkdirAll(filepath.Dir(dev.path), 0o755); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.Create(dev.path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n, err := io.Copy(f, &meteredReader{Reader: r.Body, m: &meter{l: l, conn: conn}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Printf("nfc: %s %s: %d bytes, then %s", r.Method, r.URL.Path, n, err)
		if errors.Is(err, errLeaseClosed) && conn != nil {
			// Like a host dropping the transfer: no response, the connection just ends.
			cutTransfer(conn)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	log.Printf("nfc: %s %s: %d bytes into %s", r.Method, r.URL.Path, n, dev.path)
	w.WriteHeader(http.StatusOK)
}

// serveTestControl implements
//
//	GET  /_test/leases            → JSON array of every lease's status
//	GET  /_test/lease/<id>        → JSON status of one lease
//	POST /_test/lease/<id>/abort  → the server aborts the lease (state error, fault SystemError,
//	                                transfers cut); 200 with the status, 409 if the lease was
//	                                already done or failed, 404 if unknown.
//	GET  /_test/nfc-requests      → JSON array of the NFC requests seen (nfchost.go)
//	DELETE /_test/nfc-requests    → forgets them; 204
//	GET  /_test/vms, POST /_test/vm/<name>/disk/<n>/write?offset=N → guest.go
//
// It needs no session: it is a test hook, not part of the vSphere API.
func serveTestControl(w http.ResponseWriter, r *http.Request) {
	p := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_test/"), "/"), "/")
	reply := func(code int, v interface{}) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case len(p) == 1 && p[0] == "nfc-requests" && r.Method == http.MethodGet:
		reply(http.StatusOK, listNFCRequests())
	case len(p) == 1 && p[0] == "nfc-requests" && r.Method == http.MethodDelete:
		clearNFCRequests()
		w.WriteHeader(http.StatusNoContent)
	case len(p) == 1 && p[0] == "leases" && r.Method == http.MethodGet:
		all := []leaseStatus{}
		leases.Range(func(_, v interface{}) bool {
			l := v.(*nfcLease)
			simulator.Map.WithLock(l, func() { all = append(all, l.status()) })
			return true
		})
		reply(http.StatusOK, all)
	case len(p) >= 2 && p[0] == "lease":
		l := lookupLease(p[1])
		if l == nil {
			reply(http.StatusNotFound, map[string]string{"error": "no such lease: " + p[1]})
			return
		}
		switch {
		case len(p) == 2 && r.Method == http.MethodGet:
			var s leaseStatus
			simulator.Map.WithLock(l, func() { s = l.status() })
			reply(http.StatusOK, s)
		case len(p) == 3 && p[2] == "abort" && r.Method == http.MethodPost:
			var s leaseStatus
			var aborted bool
			simulator.Map.WithLock(l, func() {
				aborted = l.serverAbort("aborted through /_test/lease/"+l.id+"/abort", nil)
				s = l.status()
			})
			if !aborted {
				reply(http.StatusConflict, s)
				return
			}
			reply(http.StatusOK, s)
		default:
			reply(http.StatusNotFound, map[string]string{"error": "unknown control request"})
		}
	case len(p) >= 1 && (p[0] == "vms" || p[0] == "vm"):
		serveVMControl(w, r, p, reply) // guest.go
	default:
		reply(http.StatusNotFound, map[string]string{"error": "unknown control request"})
	}
}
