// Command vcsim is Sneakernet's vSphere test peer: govmomi 0.24.2's simulator (the VPX model)
// plus the pieces a transfer tool needs and 0.24.2 lacks:
//
//   - ExportVm (powered-off VMs and templates; a powered-on VM gets InvalidPowerState) and
//     ExportVApp, returning an HttpNfcLease whose device URLs serve the VMs' disk files,
//     with Range support;
//   - HttpNfcLease life cycle: initializing → ready after -lease-ready-delay, an enforced
//     -lease-timeout renewed by HttpNfcLeaseProgress / GetManifest, Complete → done,
//     Abort → error, timeout → error (Timedout) and the device URLs stop serving;
//   - HttpNfcLeaseGetManifest (SHA-1 and SHA-256 of each file) and OvfManager.CreateDescriptor;
//   - NFC uploads to import leases (ResourcePool/VirtualApp.ImportVApp) stored byte for byte
//     under <data-dir>/uploads/<lease>/<file>;
//   - disks with real content (-disk-size, -disk-content, -disks-per-vm), templates (-templates),
//     vApps (-app) and a choice of powered-on VMs (-powered-on);
//   - NFC served as vCenter does it, by a second listener standing for the ESXi host that holds
//     the disks (-nfc-host separate: device URLs name that host, with its own certificate's
//     SHA-1 in sslThumbprint), or as when connected to an ESXi host directly (-nfc-host direct:
//     "*" device URLs on the SDK listener); -nfc-thumbprint and -nfc-download shape the NFC side;
//   - optional TLS with a self-signed certificate (-tls) and enforced credentials;
//   - -no-wait-for-updates: a vCenter without WaitForUpdatesEx (MethodNotFound), to test a
//     client's fallback to polling;
//   - snapshots that freeze disk content, linked clones from a snapshot that read it, change
//     tracking (per-disk changeIds) and QueryChangedDiskAreas (layers.go, snapshot.go);
//     -tools-running for quiesced snapshots, -deny-privileges for HasPrivilegeOnEntity;
//   - a test control endpoint: POST /_test/lease/<id>/abort, GET /_test/lease/<id>,
//     GET/DELETE /_test/nfc-requests, GET /_test/vms, POST /_test/vm/<vm>/disk/<n>/write.
//
// Build (no modules; govmomi's source comes from the Debian package golang-github-vmware-govmomi-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o vcsim ./test/peers/vsphere/vcsim
//
// Protocol on stdout: line 1 is the SDK URL with credentials (http://user:pass@127.0.0.1:PORT/sdk,
// https with -tls); line 2 is one JSON object: {"dataDir", "inventory", "uploads",
// "thumbprintSha1", "thumbprintSha256", "nfcUrl", "nfcThumbprintSha1", "nfcThumbprintSha256"}
// (thumbprints only with -tls, nfc* only with -nfc-host separate). Everything else goes to
// stderr. SIGTERM or SIGINT closes the listener and every connection and exits with status 0.
//
// See test/peers/vsphere/README.md for every flag and the file layout of the data directory.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

// defaultNFCHost is the -nfc-host default: "separate", as a vCenter hands out device URLs of its
// ESXi hosts (issue #17); keep it in step with defaultNfcHost in ../simulator.ts.
const defaultNFCHost = "separate"

// config holds the parsed command line; the lease and NFC code read it through the package
// variable cfg, which is written once before the server starts.
type config struct {
	listen          string
	username        string
	password        string
	tls             bool
	dataDir         string
	ownDataDir      bool // created by us: removed on exit
	vmsPerPool      int
	apps            int
	templates       int
	poweredOn       string
	toolsRunning    string
	quiesceFails    string
	denyPrivileges  string
	disksPerVM      int
	diskSize        int64
	diskContent     string
	seed            int64
	leaseTimeout    time.Duration
	leaseReadyDelay time.Duration
	abortAfterBytes int64
	nfcRate         int64
	nfcHost         string // "separate" or "direct"
	nfcListen       string
	nfcThumbprint   string // "right", "wrong" or "none"
	nfcDownload     string // "length", "chunked" or "close"
	nfcShortBody    int64  // chunked/close: end each download normally after this many bytes
	waitForUpdates  bool   // false with -no-wait-for-updates
	trace           bool

	// Filled in at start-up.
	thumbprintSha1      string
	thumbprintSha256    string
	nfcURL              string // scheme://host:port of the NFC listener, separate mode only
	nfcThumbprintSha1   string // of the NFC listener's certificate, separate mode with -tls
	nfcThumbprintSha256 string
	deviceThumbprint    string // what device URLs carry in sslThumbprint
}

var cfg config

func parseFlags() error {
	var diskSize string
	fs := flag.NewFlagSet("vcsim", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "host:port to listen on (port 0 picks a free port)")
	fs.StringVar(&cfg.username, "username", "user", "the only user name Login accepts")
	fs.StringVar(&cfg.password, "password", "pass", "the only password Login accepts")
	fs.BoolVar(&cfg.tls, "tls", false, "serve https with a fresh self-signed certificate")
	fs.StringVar(&cfg.dataDir, "data-dir", "", "directory for datastores, uploads and inventory.json (default: a new temporary directory, removed on exit)")
	fs.IntVar(&cfg.vmsPerPool, "vm", 2, "VMs per standalone host, per cluster root pool and per vApp")
	fs.IntVar(&cfg.apps, "app", 1, "vApps per cluster (DC0_C0_APP<n>, each holding -vm VMs)")
	fs.IntVar(&cfg.templates, "templates", 1, "templates per cluster (DC0_C0_TPL<n>)")
	fs.StringVar(&cfg.poweredOn, "powered-on", "DC0_H0_VM0", "comma-separated names of VMs left powered on; '*' = every VM, '' = none; templates are always off")
	fs.StringVar(&cfg.toolsRunning, "tools-running", "", "comma-separated names of powered-on VMs whose VMware Tools run (guest.toolsRunningStatus guestToolsRunning: a snapshot can be quiesced); '*' = every powered-on VM")
	fs.StringVar(&cfg.quiesceFails, "quiesce-fails", "", "comma-separated names of VMs whose quiesced snapshots fail with ApplicationQuiesceFault (a guest pre-freeze script that exits non-zero); unquiesced ones succeed")
	fs.StringVar(&cfg.denyPrivileges, "deny-privileges", "", "comma-separated privilege ids HasPrivilegeOnEntity answers false for (a user whose role lacks them), e.g. VirtualMachine.State.CreateSnapshot")
	fs.IntVar(&cfg.disksPerVM, "disks-per-vm", 2, "virtual disks per VM and template (disk1.vmdk .. diskN.vmdk)")
	fs.StringVar(&diskSize, "disk-size", "1MiB", "size of every disk file and capacity of every disk (bytes, or with K/KiB, M/MiB, G/GiB)")
	fs.StringVar(&cfg.diskContent, "disk-content", "random", "disk file content: random | pattern | sparse | zero")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the random and sparse disk content")
	fs.DurationVar(&cfg.leaseTimeout, "lease-timeout", 300*time.Second, "an NFC lease without HttpNfcLeaseProgress/GetManifest for this long goes to state error (Timedout)")
	fs.DurationVar(&cfg.leaseReadyDelay, "lease-ready-delay", 200*time.Millisecond, "time a new NFC lease stays in state initializing")
	fs.Int64Var(&cfg.abortAfterBytes, "abort-after-bytes", 0, "if > 0, the server aborts any NFC lease once this many bytes went through its device URLs (state error, connection closed)")
	fs.Int64Var(&cfg.nfcRate, "nfc-rate", 0, "if > 0, each NFC lease moves at most this many bytes per second through its device URLs (a slow host or link)")
	fs.StringVar(&cfg.nfcHost, "nfc-host", defaultNFCHost, "separate: NFC served by a second listener (-nfc-listen) with its own certificate, device URLs naming it, as vCenter hands out ESXi host URLs; direct: NFC on the SDK listener with https://*/nfc/... device URLs, as an ESXi host connected to directly")
	fs.StringVar(&cfg.nfcListen, "nfc-listen", "127.0.0.2:0", "IP:port of the NFC listener in -nfc-host separate mode (another loopback address: another host)")
	fs.StringVar(&cfg.nfcThumbprint, "nfc-thumbprint", "right", "sslThumbprint of device URLs with -tls: right (the NFC listener's SHA-1) | wrong (another certificate's) | none (empty)")
	fs.Int64Var(&cfg.nfcShortBody, "nfc-short-body", 0, "with -nfc-download chunked or close: end each download the normal way after this many bytes, the lease still ready (a cut the client cannot tell from the end; the lease manifest still gives the whole size)")
	fs.StringVar(&cfg.nfcDownload, "nfc-download", "length", "export download framing: length (Content-Length) | chunked (Transfer-Encoding: chunked) | close (no length, the body ends when the connection closes)")
	noWait := fs.Bool("no-wait-for-updates", false, "answer WaitForUpdatesEx and WaitForUpdates with the fault MethodNotFound (a client must poll RetrievePropertiesEx)")
	fs.BoolVar(&cfg.trace, "trace", false, "write SOAP requests and responses to stderr")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.waitForUpdates = !*noWait
	if err := checkNFCFlags(); err != nil {
		return err
	}
	n, err := parseSize(diskSize)
	if err != nil {
		return fmt.Errorf("-disk-size: %w", err)
	}
	cfg.diskSize = n
	switch cfg.diskContent {
	case "random", "pattern", "sparse", "zero":
	default:
		return fmt.Errorf("-disk-content: want random, pattern, sparse or zero, got %q", cfg.diskContent)
	}
	if cfg.disksPerVM < 1 {
		return fmt.Errorf("-disks-per-vm must be at least 1")
	}
	if cfg.vmsPerPool < 0 || cfg.apps < 0 || cfg.templates < 0 {
		return fmt.Errorf("-vm, -app and -templates must not be negative")
	}
	if cfg.leaseTimeout <= 0 {
		return fmt.Errorf("-lease-timeout must be positive")
	}
	if cfg.username == "" || cfg.password == "" {
		return fmt.Errorf("-username and -password must not be empty")
	}
	return nil
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := parseFlags(); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(1)
	}
}

func run() error {
	simulator.Trace = cfg.trace

	if cfg.dataDir == "" {
		dir, err := os.MkdirTemp("", "sneakernet-vcsim-")
		if err != nil {
			return err
		}
		cfg.dataDir, cfg.ownDataDir = dir, true
	}
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return err
	}
	cfg.dataDir = dir
	if err := os.MkdirAll(filepath.Join(cfg.dataDir, "uploads"), 0o755); err != nil {
		return err
	}

	model := simulator.VPX()
	model.Machine = cfg.vmsPerPool
	model.App = cfg.apps

	// The model puts each datastore in ioutil.TempDir("", ...), which honours TMPDIR: pointing it
	// at the data directory for the duration of Create keeps every disk file under -data-dir.
	oldTmp, hadTmp := os.LookupEnv("TMPDIR")
	_ = os.Setenv("TMPDIR", cfg.dataDir)
	err = model.Create()
	if hadTmp {
		_ = os.Setenv("TMPDIR", oldTmp)
	} else {
		_ = os.Unsetenv("TMPDIR")
	}
	if err != nil {
		return fmt.Errorf("creating the VPX model: %w", err)
	}

	// An in-process client (the Service is its own RoundTripper) shapes the inventory through the
	// same API a remote client would use, so the simulator keeps its bookkeeping consistent.
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		return err
	}
	inv, err := shapeInventory(ctx, client)
	if err != nil {
		return fmt.Errorf("shaping the inventory: %w", err)
	}
	invPath := filepath.Join(cfg.dataDir, "inventory.json")
	if err := writeJSON(invPath, inv); err != nil {
		return err
	}

	var servers []*http.Server
	if cfg.nfcHost == "separate" {
		// First, so that leases (which take the URL and thumbprint from cfg) never see it unset.
		nfcSrv, err := serveNFCHost()
		if err != nil {
			return fmt.Errorf("NFC listener %s: %w", cfg.nfcListen, err)
		}
		servers = append(servers, nfcSrv)
	}
	srv, listener, err := serve(model.Service)
	if err != nil {
		return err
	}
	servers = append(servers, srv)
	if cfg.deviceThumbprint, err = advertisedThumbprint(); err != nil {
		return err
	}

	// The stdout protocol: the URL first (the launcher waits for it), then the details.
	u := &url.URL{
		Scheme: "http",
		User:   url.UserPassword(cfg.username, cfg.password),
		Host:   listener.Addr().String(),
		Path:   "/sdk",
	}
	if cfg.tls {
		u.Scheme = "https"
	}
	info := map[string]string{
		"dataDir":   cfg.dataDir,
		"inventory": invPath,
		"uploads":   filepath.Join(cfg.dataDir, "uploads"),
	}
	if cfg.tls {
		info["thumbprintSha1"] = cfg.thumbprintSha1
		info["thumbprintSha256"] = cfg.thumbprintSha256
	}
	if cfg.nfcHost == "separate" {
		info["nfcUrl"] = cfg.nfcURL
		if cfg.tls {
			info["nfcThumbprintSha1"] = cfg.nfcThumbprintSha1
			info["nfcThumbprintSha256"] = cfg.nfcThumbprintSha256
		}
	}
	line, _ := json.Marshal(info)
	fmt.Println(u.String())
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("vcsim: %s, shutting down", s)

	// Close, not Shutdown: a test peer must not wait for a half-finished NFC stream.
	for _, s := range servers {
		_ = s.Close()
	}
	stopAllLeases()
	if cfg.ownDataDir {
		_ = os.RemoveAll(cfg.dataDir)
	}
	return nil
}

type connKey struct{}

// serve starts our own http.Server rather than Service.NewServer: NewServer starts serving on
// its own handler at once, and we need a handler in front of the simulator's ServeMux (see
// front.go) plus access to each request's net.Conn (to cut NFC streams when a lease dies).
func serve(svc *simulator.Service) (*http.Server, net.Listener, error) {
	// Login accepts exactly these credentials. The simulator compares Listen.User with its
	// DefaultLogin by pointer and accepts anything non-empty when they are the same, so this must
	// be a fresh *url.Userinfo even for the default user/pass.
	svc.Listen = &url.URL{User: url.UserPassword(cfg.username, cfg.password)}
	svc.RegisterSDK(simulator.Map)

	mux := svc.ServeMux
	mux.HandleFunc(simulator.Map.Path+"/vimServiceVersions.xml", svc.ServiceVersions)
	mux.HandleFunc("/folder/", svc.ServeDatastore)
	mux.HandleFunc("/guestFile", simulator.ServeGuest)
	mux.HandleFunc("/about", svc.About)
	if cfg.nfcHost == "direct" {
		// In separate mode the vCenter does not serve NFC: its /nfc/ answers 404.
		mux.HandleFunc("/nfc/", serveNFC)
	}
	mux.HandleFunc("/_test/", serveTestControl)

	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return nil, nil, err
	}
	if cfg.tls {
		cert, sha1, sha256, err := selfSignedCertificate("127.0.0.1", sdkCertificateIPs())
		if err != nil {
			_ = l.Close()
			return nil, nil, err
		}
		cfg.thumbprintSha1, cfg.thumbprintSha256 = sha1, sha256
		svc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		l = tls.NewListener(l, svc.TLS)
	}
	// Clients that follow the service content to a host connect here.
	simulator.Map.SessionManager().ServiceHostName = l.Addr().String()

	srv := &http.Server{
		Handler:     &frontHandler{next: mux},
		ErrorLog:    log.New(os.Stderr, "http: ", log.Ltime),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			log.Printf("vcsim: serve: %s", err)
		}
	}()
	return srv, l, nil
}

func writeJSON(path string, v interface{}) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
