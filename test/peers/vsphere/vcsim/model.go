package main

// Shaping the VPX model into the inventory the tests need, and describing it in inventory.json.

import (
	"context"
	"fmt"
	"log"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// inventory is written to <data-dir>/inventory.json once at start-up, so that a test can find
// the exact bytes behind every disk without knowing the simulator's directory layout.
type inventory struct {
	Datastores []invDatastore `json:"datastores"`
	VMs        []invVM        `json:"vms"`
	VApps      []invVApp      `json:"vApps"`
}

type invDatastore struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

type invVM struct {
	Moref      string    `json:"moref"`
	Name       string    `json:"name"`
	PowerState string    `json:"powerState"`
	Template   bool      `json:"template"`
	VApp       string    `json:"vApp,omitempty"`
	Disks      []invDisk `json:"disks"`
}

type invDisk struct {
	Key          int32  `json:"key"`       // VirtualDevice.key
	DeviceKey    string `json:"deviceKey"` // HttpNfcLeaseDeviceUrl.key of this disk in an export lease
	FileName     string `json:"fileName"`  // datastore path, "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"
	Path         string `json:"path"`      // absolute path of the file an export serves
	Size         int64  `json:"size"`
	CapacityInKB int64  `json:"capacityInKB"`
	Sha256       string `json:"sha256"`
}

type invVApp struct {
	Moref string   `json:"moref"`
	Name  string   `json:"name"`
	VMs   []string `json:"vms"`
}

// vmDisk is one virtual disk of a VM, in device order.
type vmDisk struct {
	index    int // 0-based among the VM's disks
	key      int32
	fileName string
	path     string
	capacity int64 // bytes
	device   *types.VirtualDisk
}

// diskDeviceKey is the key of a disk in lease device URLs and in CreateDescriptor's ovfFiles:
// the same "/<vm moref>/disk:<n>" form the simulator uses for import leases.
func diskDeviceKey(vm types.ManagedObjectReference, index int) string {
	return fmt.Sprintf("/%s/disk:%d", vm.Value, index)
}

// datastoreFile maps "[LocalDS_0] dir/file.vmdk" to the file on the local file system.
func datastoreFile(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		if ds.Name == p.Datastore {
			return filepath.Join(ds.Info.GetDatastoreInfo().Url, p.Path), nil
		}
	}
	return "", fmt.Errorf("no datastore named %q", p.Datastore)
}

// vmDisks lists a VM's disks; the caller holds the VM's lock (or runs before serving).
func vmDisks(vm *simulator.VirtualMachine) ([]vmDisk, error) {
	var disks []vmDisk
	for _, d := range vm.Config.Hardware.Device {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		backing, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		name := backing.GetVirtualDeviceFileBackingInfo().FileName
		file, err := datastoreFile(name)
		if err != nil {
			return nil, err
		}
		capacity := disk.CapacityInBytes
		if capacity == 0 {
			capacity = disk.CapacityInKB * 1024
		}
		disks = append(disks, vmDisk{
			index:    len(disks),
			key:      disk.Key,
			fileName: name,
			path:     file,
			capacity: capacity,
			device:   disk,
		})
	}
	return disks, nil
}

// shapeInventory adds templates, disks and content to the freshly created model, sets power
// states, and returns the description written to inventory.json. It runs before the server
// starts, so nothing else touches the objects it changes directly.
func shapeInventory(ctx context.Context, c *vim25.Client) (*inventory, error) {
	finder := find.NewFinder(c, false)
	dcs, err := finder.DatacenterList(ctx, "*")
	if err != nil {
		return nil, err
	}
	for _, dc := range dcs {
		finder.SetDatacenter(dc)
		if err := createTemplates(ctx, finder); err != nil {
			return nil, err
		}
	}

	var vms []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vms = append(vms, e.(*simulator.VirtualMachine))
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })

	on := map[string]bool{}
	for _, name := range strings.Split(cfg.poweredOn, ",") {
		if name = strings.TrimSpace(name); name != "" {
			on[name] = true
		}
	}

	tools := map[string]bool{}
	for _, name := range strings.Split(cfg.toolsRunning, ",") {
		if name = strings.TrimSpace(name); name != "" {
			tools[name] = true
		}
	}

	for _, vm := range vms {
		ref := object.NewVirtualMachine(c, vm.Self)
		if err := addDisks(ctx, ref, vm); err != nil {
			return nil, fmt.Errorf("%s: %w", vm.Name, err)
		}
		// Capacities are set in place: the only concurrent reader would be a client, and the
		// server is not listening yet.
		for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
			disk := d.(*types.VirtualDisk)
			disk.CapacityInBytes = cfg.diskSize
			disk.CapacityInKB = (cfg.diskSize + 1023) / 1024
		}

		template := isTemplateName(vm.Name)
		wantOn := !template && (on["*"] || on[vm.Name])
		isOn := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		switch {
		case isOn && !wantOn:
			if err := waitTask(ref.PowerOff(ctx)); err != nil {
				return nil, fmt.Errorf("%s: power off: %w", vm.Name, err)
			}
		case !isOn && wantOn:
			if err := waitTask(ref.PowerOn(ctx)); err != nil {
				return nil, fmt.Errorf("%s: power on: %w", vm.Name, err)
			}
		}
		// Every VM can track changed blocks (0.24.2 never sets the capability); a VM named in
		// -tools-running runs VMware Tools.
		vm.Capability.ChangeTrackingSupported = types.NewBool(true)
		if wantOn && (tools["*"] || tools[vm.Name]) {
			vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
			vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
		}
		if template {
			if err := ref.MarkAsTemplate(ctx); err != nil {
				return nil, fmt.Errorf("%s: mark as template: %w", vm.Name, err)
			}
		}
	}

	for name := range on {
		if name == "*" {
			continue
		}
		found := false
		for _, vm := range vms {
			found = found || vm.Name == name
		}
		if !found {
			log.Printf("vcsim: -powered-on names %q, which is not a VM of this model", name)
		}
	}

	inv := &inventory{Datastores: []invDatastore{}, VMs: []invVM{}, VApps: []invVApp{}}
	var jobs []contentJob
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		inv.Datastores = append(inv.Datastores, invDatastore{Name: ds.Name, Path: ds.Info.GetDatastoreInfo().Url})
	}
	sort.Slice(inv.Datastores, func(i, j int) bool { return inv.Datastores[i].Name < inv.Datastores[j].Name })

	for _, vm := range vms {
		disks, err := vmDisks(vm)
		if err != nil {
			return nil, err
		}
		item := invVM{
			Moref:      vm.Self.Value,
			Name:       vm.Name,
			PowerState: string(vm.Runtime.PowerState),
			Template:   vm.Config.Template,
			Disks:      []invDisk{},
		}
		if vm.ResourcePool != nil && vm.ResourcePool.Type == "VirtualApp" {
			item.VApp = vm.ResourcePool.Value
		}
		for _, d := range disks {
			item.Disks = append(item.Disks, invDisk{
				Key:          d.key,
				DeviceKey:    diskDeviceKey(vm.Self, d.index),
				FileName:     d.fileName,
				Path:         d.path,
				CapacityInKB: d.device.CapacityInKB,
			})
		}
		// Pointers into item.Disks are taken once it is complete (appends may move it); the
		// array is shared with the copy appended to inv.VMs.
		for i, d := range disks {
			jobs = append(jobs, contentJob{disk: &item.Disks[i], vmName: vm.Name, number: d.index + 1})
		}
		inv.VMs = append(inv.VMs, item)
	}

	if err := fillDisks(jobs); err != nil {
		return nil, err
	}

	for _, e := range simulator.Map.All("VirtualApp") {
		app := e.(*simulator.VirtualApp)
		item := invVApp{Moref: app.Self.Value, Name: app.Name, VMs: []string{}}
		for _, vm := range app.Vm {
			item.VMs = append(item.VMs, vm.Value)
		}
		sort.Strings(item.VMs)
		inv.VApps = append(inv.VApps, item)
	}
	sort.Slice(inv.VApps, func(i, j int) bool { return inv.VApps[i].Name < inv.VApps[j].Name })
	return inv, nil
}

const templateInfix = "_TPL"

func isTemplateName(name string) bool { return strings.Contains(name, templateInfix) }

// createTemplates creates -templates powered-off VMs per cluster, named <cluster>_TPL<n>, with
// the same hardware as the model's VMs except that the NIC is on the standard "VM Network".
// They become templates after their disks are added (MarkAsTemplate needs a VM).
func createTemplates(ctx context.Context, finder *find.Finder) error {
	if cfg.templates == 0 {
		return nil
	}
	clusters, err := finder.ClusterComputeResourceList(ctx, "*")
	if err != nil {
		return nil // no cluster in this datacenter
	}
	vmFolder, err := finder.DefaultFolder(ctx)
	if err != nil {
		return err
	}
	ds, err := finder.DefaultDatastore(ctx)
	if err != nil {
		return err
	}
	for _, cluster := range clusters {
		pool, err := cluster.ResourcePool(ctx)
		if err != nil {
			return err
		}
		for i := 0; i < cfg.templates; i++ {
			name := fmt.Sprintf("%s%s%d", cluster.Name(), templateInfix, i)
			var devices object.VirtualDeviceList
			scsi, err := devices.CreateSCSIController("pvscsi")
			if err != nil {
				return err
			}
			devices = append(devices, scsi)
			disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds.Reference(),
				fmt.Sprintf("[%s] %s/disk1.vmdk", ds.Name(), name))
			disk.CapacityInKB = (cfg.diskSize + 1023) / 1024
			devices = append(devices, disk)
			nic, err := devices.CreateEthernetCard("e1000", &types.VirtualEthernetCardNetworkBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
			})
			if err != nil {
				return err
			}
			devices = append(devices, nic)
			change, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
			if err != nil {
				return err
			}
			spec := types.VirtualMachineConfigSpec{
				Name:         name,
				GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherGuest),
				Files:        &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", ds.Name())},
				DeviceChange: change,
			}
			if err := waitTask(vmFolder.CreateVM(ctx, spec, pool, nil)); err != nil {
				return fmt.Errorf("creating %s: %w", name, err)
			}
		}
	}
	return nil
}

// addDisks brings a VM to -disks-per-vm disks, named disk<N>.vmdk next to its first disk.
func addDisks(ctx context.Context, ref *object.VirtualMachine, vm *simulator.VirtualMachine) error {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	existing := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(existing) >= cfg.disksPerVM {
		return nil
	}
	controller, err := devices.FindSCSIController("")
	if err != nil {
		return err
	}
	dir := fmt.Sprintf("[%s] %s", "LocalDS_0", vm.Name)
	if len(existing) > 0 {
		first := existing[0].GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
		var p object.DatastorePath
		p.FromString(first.GetVirtualDeviceFileBackingInfo().FileName)
		p.Path = path.Dir(p.Path)
		dir = p.String()
	}
	var dsRef types.ManagedObjectReference
	if len(vm.Datastore) > 0 {
		dsRef = vm.Datastore[0]
	}
	var add []types.BaseVirtualDevice
	for n := len(existing) + 1; n <= cfg.disksPerVM; n++ {
		disk := devices.CreateDisk(controller, dsRef, fmt.Sprintf("%s/disk%d.vmdk", dir, n))
		disk.CapacityInKB = (cfg.diskSize + 1023) / 1024
		devices = append(devices, disk) // so the next disk gets the next unit number
		add = append(add, disk)
	}
	return ref.AddDevice(ctx, add...)
}

func waitTask(task *object.Task, err error) error {
	if err != nil {
		return err
	}
	return task.Wait(context.Background())
}

// contentJob writes and then hashes one disk file, filling in its inventory entry.
type contentJob struct {
	disk   *invDisk
	vmName string
	number int // 1-based disk number, part of the content seed
}

// zeroDigests keeps the SHA-256 of an all-zero disk per size: with -disk-content zero every disk of
// a size has the same bytes, so one is hashed and the rest take its digest (16 disks of 512 MiB
// took 15 s to hash at start on 2 cores, near the tests' 30 s start limit under load).
var zeroDigests sync.Map

// contentSHA256 is fileSHA256 of a freshly written disk, hashing an all-zero disk once per size.
func contentSHA256(path string) (int64, string, error) {
	if cfg.diskContent != "zero" {
		return fileSHA256(path)
	}
	if sum, ok := zeroDigests.Load(cfg.diskSize); ok {
		return cfg.diskSize, sum.(string), nil
	}
	size, sum, err := fileSHA256(path)
	if err == nil && size == cfg.diskSize {
		zeroDigests.Store(size, sum)
	}
	return size, sum, err
}

// fillDisks runs the jobs on every CPU: hashing dominates start-up with large disks
// (SHA-256 runs at a few hundred MB/s per core).
func fillDisks(jobs []contentJob) error {
	work := make(chan contentJob)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := writeDiskContent(j.disk.Path, j.vmName, j.number, cfg.diskSize); err != nil {
					errs <- err
					continue
				}
				size, sum, err := contentSHA256(j.disk.Path)
				if err != nil {
					errs <- err
					continue
				}
				j.disk.Size, j.disk.Sha256 = size, sum
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}
