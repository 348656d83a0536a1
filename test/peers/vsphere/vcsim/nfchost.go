package main

// Where NFC is served, and what device URLs say about it (-nfc-host, -nfc-thumbprint).
//
// A vCenter does not move disk bytes itself: HttpNfcLeaseDeviceUrl.url names the ESXi host
// that holds the disk, and sslThumbprint is the SHA-1 of that host's certificate, not the
// vCenter's (vSphere Web Services API, data object HttpNfcLeaseDeviceUrl: "SSL thumbprint for
// the host the URL refers to"). Only a server that is itself the host, an ESXi connected to
// directly, answers with "*" for the host, which the client replaces by the host it called
// (same reference, property url). govmomi 0.24.2's client is built on exactly that:
// nfc/lease.go newLeaseInfo parses each device URL with soap.Client.ParseURL (which rewrites a
// "*" host to the client's own host:port, vim25/soap/client.go) and calls
// SetThumbprint(u.Host, device.SslThumbprint); dialTLS in vim25/soap/client.go then accepts a
// certificate that fails the CA check only if its SHA-1 equals the thumbprint recorded for that
// host:port. (0.24.2's vim25/types/types.go carries no doc comments for these fields; the API
// reference is the source for their meaning.)
//
//	-nfc-host separate  a second listener, on another loopback address (-nfc-listen, default
//	                    127.0.0.2:0: Linux routes all of 127/8 to lo, so it is another host, not
//	                    only another port), with a certificate of its own under -tls; device URLs
//	                    name it exactly. It serves /nfc/ and nothing else, and authorizes by the
//	                    lease id in the URL (the ticket), never by the vCenter's session cookie.
//	-nfc-host direct    NFC on the SDK listener, device URLs https://*/nfc/..., sslThumbprint
//	                    the SDK certificate's SHA-1.
//
// Every request that reaches the NFC listener, and every /nfc/ request on the SDK listener, is
// recorded for GET /_test/nfc-requests, so that tests can see where a client sent its transfers
// and whether it sent the vCenter's session cookie along.

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"

	"github.com/vmware/govmomi/vim25/soap"
)

func checkNFCFlags() error {
	switch cfg.nfcHost {
	case "separate", "direct":
	default:
		return fmt.Errorf("-nfc-host: want separate or direct, got %q", cfg.nfcHost)
	}
	switch cfg.nfcThumbprint {
	case "right", "wrong", "none":
	default:
		return fmt.Errorf("-nfc-thumbprint: want right, wrong or none, got %q", cfg.nfcThumbprint)
	}
	switch cfg.nfcDownload {
	case "length", "chunked", "close":
	default:
		return fmt.Errorf("-nfc-download: want length, chunked or close, got %q", cfg.nfcDownload)
	}
	host, _, err := net.SplitHostPort(cfg.nfcListen)
	if err != nil {
		return fmt.Errorf("-nfc-listen: %w", err)
	}
	// Device URLs carry this address as it is, so it must be one a client can connect to.
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("-nfc-listen: want a concrete IP address and a port, got %q", cfg.nfcListen)
	}
	return nil
}

// sdkCertificateIPs are the addresses in the SDK listener's certificate.
func sdkCertificateIPs() []net.IP {
	return []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
}

// serveNFCHost starts the separate NFC listener and fills in cfg.nfcURL and its thumbprints.
func serveNFCHost() (*http.Server, error) {
	l, err := net.Listen("tcp", cfg.nfcListen)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(l.Addr().String())
	scheme := "http"
	if cfg.tls {
		// Its own key and certificate: a client that trusts the vCenter's does not trust this one.
		ips := []net.IP{net.ParseIP(host)}
		for _, ip := range sdkCertificateIPs() {
			if !ip.Equal(ips[0]) {
				ips = append(ips, ip)
			}
		}
		cert, s1, s256, err := selfSignedCertificate("esx-nfc "+host, ips)
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		cfg.nfcThumbprintSha1, cfg.nfcThumbprintSha256 = s1, s256
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
		scheme = "https"
	}
	cfg.nfcURL = (&url.URL{Scheme: scheme, Host: l.Addr().String()}).String()

	mux := http.NewServeMux()
	mux.HandleFunc("/nfc/", serveNFC)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			recordNFCRequest("nfc", r)
			mux.ServeHTTP(w, r)
		}),
		ErrorLog:    log.New(os.Stderr, "http (nfc): ", log.Ltime),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			log.Printf("vcsim: serve NFC: %s", err)
		}
	}()
	log.Printf("vcsim: NFC host at %s", cfg.nfcURL)
	return srv, nil
}

// advertisedThumbprint is the sslThumbprint of every device URL. Without -tls there is no
// certificate, so it is empty.
func advertisedThumbprint() (string, error) {
	if !cfg.tls {
		return "", nil
	}
	switch cfg.nfcThumbprint {
	case "none":
		return "", nil
	case "wrong":
		// A well-formed SHA-1 of a real certificate, just not the one the NFC host presents.
		_, s1, _, err := selfSignedCertificate("not the NFC host", sdkCertificateIPs())
		return s1, err
	}
	if cfg.nfcHost == "separate" {
		return cfg.nfcThumbprintSha1, nil
	}
	return cfg.thumbprintSha1, nil
}

// deviceURL is the URL of one file of a lease: on the NFC host in separate mode, with the "*"
// host otherwise (always https there, even without -tls, as before: the scheme a client uses
// is the one it called the SDK with).
func deviceURL(leaseID, name string) string {
	p := "/nfc/" + leaseID + "/" + name
	if cfg.nfcHost == "separate" {
		return cfg.nfcURL + p
	}
	return (&url.URL{Scheme: "https", Host: "*", Path: p}).String()
}

// nfcRequest is one entry of GET /_test/nfc-requests.
type nfcRequest struct {
	Listener      string `json:"listener"` // "nfc" or "sdk"
	Method        string `json:"method"`
	Path          string `json:"path"`
	SessionCookie bool   `json:"sessionCookie"` // the request carried a vmware_soap_session cookie
}

// maxNFCRequests bounds the log; the oldest entries go first.
const maxNFCRequests = 10000

var nfcRequests struct {
	sync.Mutex
	entries []nfcRequest
}

func recordNFCRequest(listener string, r *http.Request) {
	_, err := r.Cookie(soap.SessionCookieName)
	e := nfcRequest{Listener: listener, Method: r.Method, Path: r.URL.Path, SessionCookie: err == nil}
	nfcRequests.Lock()
	defer nfcRequests.Unlock()
	if len(nfcRequests.entries) >= maxNFCRequests {
		nfcRequests.entries = nfcRequests.entries[1:]
	}
	nfcRequests.entries = append(nfcRequests.entries, e)
}

func listNFCRequests() []nfcRequest {
	nfcRequests.Lock()
	defer nfcRequests.Unlock()
	return append([]nfcRequest{}, nfcRequests.entries...)
}

func clearNFCRequests() {
	nfcRequests.Lock()
	defer nfcRequests.Unlock()
	nfcRequests.entries = nil
}

// cutTransfer ends the connection of a transfer that must not look complete. With
// -nfc-download close, where the end of the connection is the end of the body, a plain close
// (FIN) would pass for a whole download, so the connection is reset instead (SO_LINGER 0, and
// for TLS no close_notify). Otherwise a close is what it always was.
func cutTransfer(c net.Conn) {
	if c == nil {
		return
	}
	if cfg.nfcDownload != "close" {
		_ = c.Close()
		return
	}
	raw := c
	if t, ok := c.(*tls.Conn); ok {
		raw = t.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
