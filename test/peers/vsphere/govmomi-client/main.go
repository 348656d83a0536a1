// Command govmomi-client checks the vSphere test peer (../vcsim) from the other side: it drives
// the peer with govmomi 0.24.2's own client packages, not with hand-written SOAP, so that where
// the peer and govmomi disagree about the wire (device URLs, thumbprints, lease life cycle,
// property collector versions, download framing) it shows here.
//
//  1. Connect the way govc does with a known thumbprint: soap.NewClient without
//     InsecureSkipVerify, SetThumbprint(host of the SDK URL, -thumbprint), vim25.NewClient,
//     session.Manager.Login.
//  2. Export: find.Finder → VirtualMachine.Export → nfc.Lease.Wait (WaitForUpdatesEx on a
//     collector of its own; newLeaseInfo calls SetThumbprint for each device URL's host with its
//     sslThumbprint) → StartUpdater (HttpNfcLeaseProgress every 2 s) → DownloadFile per item →
//     SHA-256 compared with the peer's inventory.json → Complete.
//  3. Import (unless -import=false): OvfManager.CreateDescriptor of that VM with the exported
//     files → CreateImportSpec → ResourcePool.ImportVApp → Lease.Wait(fileItems) → Upload of
//     the bytes downloaded in step 2 → Complete; then the file the peer stored under
//     <uploads>/<lease>/<file> must have the same SHA-256.
//
// With -live it checks snapshots, linked clones and change tracking instead (live.go).
//
// On success it prints one JSON summary on stdout and exits 0; on failure it prints
// {"ok": false, "step", "error", "fault"} (fault: the vim25 fault type of a SOAP fault) and
// exits 1. Build it like the peer (scripts/build-vcsim.sh govmomi-client).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type options struct {
	sdkURL     string
	thumbprint string
	inventory  string
	uploads    string
	vmPath     string
	pool       string
	datastore  string
	network    string
	doImport   bool
	live       bool
	timeout    time.Duration
}

// inventory is the part of the peer's inventory.json this program reads.
type inventory struct {
	VMs []struct {
		Name  string `json:"name"`
		Disks []struct {
			DeviceKey string `json:"deviceKey"`
			Size      int64  `json:"size"`
			SHA256    string `json:"sha256"`
		} `json:"disks"`
	} `json:"vms"`
}

// fileReport describes one transferred file in the summary.
type fileReport struct {
	URL string `json:"url"`
	// SSLThumbprint is what the lease advertised for the file's host.
	SSLThumbprint string `json:"sslThumbprint"`
	// Trusted is the thumbprint govmomi's soap.Client holds for the URL's host:port after
	// Lease.Wait, i.e. what its dialTLS will compare the host's certificate with.
	Trusted string `json:"trusted"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	// Stored is where the peer put an uploaded file (import only).
	Stored string `json:"stored,omitempty"`
}

type summary struct {
	OK          bool         `json:"ok"`
	SDKHost     string       `json:"sdkHost"`
	VM          string       `json:"vm"`
	ExportLease string       `json:"exportLease"`
	Exported    []fileReport `json:"exported"`
	ImportLease string       `json:"importLease,omitempty"`
	Live        *liveReport  `json:"live,omitempty"`
	ImportedVM  string       `json:"importedVm,omitempty"`
	Imported    []fileReport `json:"imported,omitempty"`
	Seconds     float64      `json:"seconds"`
}

// stepError names the step that failed, for the report.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func at(step string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: step, err: err}
}

func main() {
	var o options
	flag.StringVar(&o.sdkURL, "url", "", "SDK URL with credentials (line 1 of the peer's stdout)")
	flag.StringVar(&o.thumbprint, "thumbprint", "", "SHA-1 thumbprint of the SDK certificate (thumbprintSha1 of the peer's stdout); required for https")
	flag.StringVar(&o.inventory, "inventory", "", "the peer's inventory.json")
	flag.StringVar(&o.uploads, "uploads", "", "the peer's uploads directory")
	flag.StringVar(&o.vmPath, "vm", "/DC0/vm/DC0_H0_VM1", "inventory path of a powered-off VM with one disk")
	flag.StringVar(&o.pool, "pool", "/DC0/host/DC0_C0/Resources", "resource pool to import into")
	flag.StringVar(&o.datastore, "datastore", "LocalDS_0", "datastore to import into")
	flag.StringVar(&o.network, "network", "VM Network", "network every OVF network is mapped to")
	flag.BoolVar(&o.doImport, "import", true, "also import the exported disk as a new VM")
	flag.BoolVar(&o.live, "live", false, "instead of export and import: change tracking, snapshots, QueryChangedDiskAreas and a linked clone of the (running) VM (live.go)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	s, err := run(ctx, o)
	if err != nil {
		report := map[string]interface{}{"ok": false, "error": err.Error()}
		var se *stepError
		if errors.As(err, &se) {
			report["step"] = se.step
			err = se.err
		}
		if soap.IsSoapFault(err) {
			if f := soap.ToSoapFault(err).VimFault(); f != nil {
				report["fault"] = reflect.TypeOf(f).String()
			}
		}
		line, _ := json.Marshal(report)
		fmt.Println(string(line))
		fmt.Fprintln(os.Stderr, "govmomi-client:", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(s)
	fmt.Println(string(line))
}

func run(ctx context.Context, o options) (*summary, error) {
	start := time.Now()
	if o.sdkURL == "" || o.inventory == "" {
		return nil, errors.New("-url and -inventory are required")
	}
	inv, err := readInventory(o.inventory)
	if err != nil {
		return nil, at("inventory", err)
	}
	u, err := soap.ParseURL(o.sdkURL)
	if err != nil {
		return nil, at("url", err)
	}

	// The vCenter is trusted by its thumbprint alone: no InsecureSkipVerify, no CA.
	sc := soap.NewClient(u, false)
	if o.thumbprint != "" {
		sc.SetThumbprint(u.Host, o.thumbprint)
	}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, at("connect", err)
	}
	if err := session.NewManager(c).Login(ctx, u.User); err != nil {
		return nil, at("login", err)
	}

	finder := find.NewFinder(c, true)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		return nil, at("find datacenter", err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(ctx, o.vmPath)
	if err != nil {
		return nil, at("find vm", err)
	}

	s := &summary{SDKHost: u.Host, VM: o.vmPath}
	dir, err := os.MkdirTemp("", "govmomi-client-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	if o.live {
		if s.Live, err = runLive(ctx, c, sc, finder, vm, dir); err != nil {
			return nil, err
		}
		s.OK = true
		s.Seconds = time.Since(start).Seconds()
		return s, nil
	}
	exported, files, err := export(ctx, sc, vm, inv, dir, s)
	if err != nil {
		return nil, err
	}
	s.Exported = exported
	if o.doImport {
		if err := importVM(ctx, c, sc, finder, dc, vm, o, files, s); err != nil {
			return nil, err
		}
	}
	s.OK = true
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

// exportedFile is a downloaded file and the OVF file entry that describes it.
type exportedFile struct {
	local string
	ovf   types.OvfFile
}

func export(ctx context.Context, sc *soap.Client, vm *object.VirtualMachine, inv *inventory, dir string, s *summary) ([]fileReport, []exportedFile, error) {
	lease, err := vm.Export(ctx)
	if err != nil {
		return nil, nil, at("export", err)
	}
	s.ExportLease = lease.Reference().Value
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		return nil, nil, at("export lease wait", err)
	}
	updater := lease.StartUpdater(ctx, info)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			updater.Done()
		}
	}
	defer stop()

	var reports []fileReport
	var files []exportedFile
	for i, item := range info.Items {
		local := filepath.Join(dir, fmt.Sprintf("export-%d-%s", i, path.Base(item.Path)))
		if err := lease.DownloadFile(ctx, local, item, soap.DefaultDownload); err != nil {
			_ = lease.Abort(ctx, nil)
			return nil, nil, at("download "+item.URL.String(), err)
		}
		size, sum, err := fileSHA256(local)
		if err != nil {
			return nil, nil, at("hash", err)
		}
		want, err := inv.diskSHA256(item.DeviceId)
		if err != nil {
			return nil, nil, at("inventory", err)
		}
		if sum != want {
			_ = lease.Abort(ctx, nil)
			return nil, nil, at("compare", fmt.Errorf("%s: SHA-256 %s, the peer's inventory says %s", item.URL, sum, want))
		}
		reports = append(reports, fileReport{
			URL:           item.URL.String(),
			SSLThumbprint: thumbprintOf(&info.HttpNfcLeaseInfo, item.DeviceId),
			Trusted:       sc.Thumbprint(item.URL.Host),
			Bytes:         size,
			SHA256:        sum,
		})
		files = append(files, exportedFile{
			local: local,
			ovf:   types.OvfFile{DeviceId: item.DeviceId, Path: path.Base(item.Path), Size: size},
		})
	}
	if len(reports) == 0 {
		return nil, nil, at("export", errors.New("the lease has no device URLs"))
	}
	stop()
	if err := lease.Complete(ctx); err != nil {
		return nil, nil, at("export complete", err)
	}
	return reports, files, nil
}

func importVM(ctx context.Context, c *vim25.Client, sc *soap.Client, finder *find.Finder, dc *object.Datacenter,
	vm *object.VirtualMachine, o options, files []exportedFile, s *summary) error {
	m := ovf.NewManager(c)
	cdp := types.OvfCreateDescriptorParams{Name: "govmomi-client", Description: "exported by govmomi-client"}
	local := map[string]exportedFile{}
	for _, f := range files {
		cdp.OvfFiles = append(cdp.OvfFiles, f.ovf)
		local[f.ovf.Path] = f
	}
	desc, err := m.CreateDescriptor(ctx, vm, cdp)
	if err != nil {
		return at("create descriptor", err)
	}
	if len(desc.Error) > 0 {
		return at("create descriptor", fmt.Errorf("%s", desc.Error[0].LocalizedMessage))
	}

	pool, err := finder.ResourcePool(ctx, o.pool)
	if err != nil {
		return at("find pool", err)
	}
	ds, err := finder.Datastore(ctx, o.datastore)
	if err != nil {
		return at("find datastore", err)
	}
	network, err := finder.Network(ctx, o.network)
	if err != nil {
		return at("find network", err)
	}
	env, err := ovf.Unmarshal(strings.NewReader(desc.OvfDescriptor))
	if err != nil {
		return at("parse descriptor", err)
	}
	name := fmt.Sprintf("govmomi-client-%d", os.Getpid())
	cisp := types.OvfCreateImportSpecParams{EntityName: name}
	if env.Network != nil {
		for _, n := range env.Network.Networks {
			cisp.NetworkMapping = append(cisp.NetworkMapping, types.OvfNetworkMapping{Name: n.Name, Network: network.Reference()})
		}
	}
	spec, err := m.CreateImportSpec(ctx, desc.OvfDescriptor, pool, ds, cisp)
	if err != nil {
		return at("create import spec", err)
	}
	if len(spec.Error) > 0 {
		return at("create import spec", errors.New(spec.Error[0].LocalizedMessage))
	}
	if len(spec.FileItem) == 0 {
		return at("create import spec", errors.New("no file items"))
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return at("folders", err)
	}
	lease, err := pool.ImportVApp(ctx, spec.ImportSpec, folders.VmFolder, nil)
	if err != nil {
		return at("import vapp", err)
	}
	s.ImportLease = lease.Reference().Value
	s.ImportedVM = name
	info, err := lease.Wait(ctx, spec.FileItem)
	if err != nil {
		return at("import lease wait", err)
	}
	if len(info.Items) != len(spec.FileItem) {
		_ = lease.Abort(ctx, nil)
		return at("import lease wait", fmt.Errorf("%d device URLs match the %d file items", len(info.Items), len(spec.FileItem)))
	}
	updater := lease.StartUpdater(ctx, info)
	for _, item := range info.Items {
		f, ok := local[item.Path]
		if !ok {
			updater.Done()
			_ = lease.Abort(ctx, nil)
			return at("upload", fmt.Errorf("no exported file for item %q", item.Path))
		}
		if err := upload(ctx, lease, item, f.local); err != nil {
			updater.Done()
			_ = lease.Abort(ctx, nil)
			return at("upload "+item.URL.String(), err)
		}
		stored := filepath.Join(o.uploads, lease.Reference().Value, path.Base(item.URL.Path))
		size, sum, err := fileSHA256(stored)
		if err != nil {
			updater.Done()
			return at("check upload", err)
		}
		_, want, _ := fileSHA256(f.local)
		if sum != want {
			updater.Done()
			return at("check upload", fmt.Errorf("%s holds SHA-256 %s, %s was sent", stored, sum, want))
		}
		s.Imported = append(s.Imported, fileReport{
			URL:           item.URL.String(),
			SSLThumbprint: thumbprintOf(&info.HttpNfcLeaseInfo, item.DeviceId),
			Trusted:       sc.Thumbprint(item.URL.Host),
			Bytes:         size,
			SHA256:        sum,
			Stored:        stored,
		})
	}
	updater.Done()
	if err := lease.Complete(ctx); err != nil {
		return at("import complete", err)
	}
	return nil
}

func upload(ctx context.Context, lease *nfc.Lease, item nfc.FileItem, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return lease.Upload(ctx, item, f, soap.Upload{ContentLength: st.Size()})
}

// thumbprintOf finds the sslThumbprint of the device URL for a device id (export: key; import:
// importKey), as the lease advertised it.
func thumbprintOf(info *types.HttpNfcLeaseInfo, deviceID string) string {
	for _, d := range info.DeviceUrl {
		if d.Key == deviceID || d.ImportKey == deviceID {
			return d.SslThumbprint
		}
	}
	return ""
}

func readInventory(file string) (*inventory, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	inv := new(inventory)
	return inv, json.Unmarshal(b, inv)
}

func (inv *inventory) diskSHA256(deviceKey string) (string, error) {
	for _, vm := range inv.VMs {
		for _, d := range vm.Disks {
			if d.DeviceKey == deviceKey {
				return d.SHA256, nil
			}
		}
	}
	return "", fmt.Errorf("no disk with device key %q in the inventory", deviceKey)
}

func fileSHA256(file string) (int64, string, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
