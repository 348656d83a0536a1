package main

// Snapshots, linked clones, change tracking and QueryChangedDiskAreas (see layers.go for the
// disk model). Each method lets the simulator do its own bookkeeping first (the snapshot tree,
// the new VM, the stored config) and then adds what 0.24.2 lacks:
//
//	CreateSnapshot_Task     VirtualMachine          freezes each disk's top layer; the snapshot's
//	                                                config gets its own copy of the devices, with
//	                                                each disk backing's changeId at that point;
//	                                                `quiesced` only when the guest's tools run
//	RemoveSnapshot_Task     VirtualMachineSnapshot  consolidates the layers it froze
//	RemoveAllSnapshots_Task VirtualMachine          the same for every snapshot
//	CloneVM_Task            VirtualMachine          the source's devices are copied first (0.24.2
//	                                                edits the source's own disk backings); with
//	                                                spec.snapshot and diskMoveType
//	                                                createNewChildDiskBacking the clone's disks
//	                                                are children of the snapshot's layers; else a
//	                                                full copy of the content
//	ReconfigVM_Task         VirtualMachine          change tracking on/off takes effect
//	Destroy_Task            VirtualMachine          a linked clone's layers are released
//	QueryChangedDiskAreas   VirtualMachine          from the log of writes (layers.go)

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// copyDevices returns a copy of a device list that shares no struct with it: each device and,
// for disks, its backing (and the backing's parent chain) are copied.
func copyDevices(devices []types.BaseVirtualDevice) []types.BaseVirtualDevice {
	out := make([]types.BaseVirtualDevice, 0, len(devices))
	for _, d := range devices {
		v := reflect.ValueOf(d)
		if v.Kind() != reflect.Ptr || v.IsNil() {
			out = append(out, d)
			continue
		}
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(v.Elem())
		dev := c.Interface().(types.BaseVirtualDevice)
		if disk, ok := dev.(*types.VirtualDisk); ok {
			if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				disk.Backing = copyFlatBacking(b)
			}
		}
		out = append(out, dev)
	}
	return out
}

func copyFlatBacking(b *types.VirtualDiskFlatVer2BackingInfo) *types.VirtualDiskFlatVer2BackingInfo {
	if b == nil {
		return nil
	}
	c := *b
	c.Parent = copyFlatBacking(b.Parent)
	return &c
}

// setChangeID sets the changeId of the disk with the given key in a device list.
func setChangeID(devices []types.BaseVirtualDevice, key int32, changeID string) {
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok && disk.Key == key {
			if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				b.ChangeId = changeID
			}
		}
	}
}

// taskOutcome reads the result of a simulator task that has already run (0.24.2 runs tasks
// before the method returns).
func taskOutcome(ref types.ManagedObjectReference) (types.AnyType, *types.LocalizedMethodFault) {
	t, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return nil, &types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: ref}}
	}
	return t.Info.Result, t.Info.Error
}

// newTask makes a task of ours that has already ended with the given outcome.
func newTask(entity types.ManagedObjectReference, name string, result types.AnyType, fault types.BaseMethodFault) types.ManagedObjectReference {
	obj := simulator.Map.Get(entity)
	return simulator.CreateTask(obj, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return result, fault
	}).Run()
}

// listed says whether name is in a comma-separated flag value ("*" = every name).
func listed(list, name string) bool {
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "*" || (n != "" && n == name) {
			return true
		}
	}
	return false
}

func toolsRunning(vm *simulator.VirtualMachine) bool {
	return vm.Guest != nil && vm.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
}

func findTreeItem(list []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) *types.VirtualMachineSnapshotTree {
	for i := range list {
		if list[i].Snapshot == ref {
			return &list[i]
		}
		if found := findTreeItem(list[i].ChildSnapshotList, ref); found != nil {
			return found
		}
	}
	return nil
}

// syncChangeTracking applies config.changeTrackingEnabled to a VM's disks: off drops their
// tracking; on starts it at once for a powered-off VM, and at the next stun/unstun (snapshot)
// for a running one. `stun` says this is such a moment. The caller holds the VM's lock.
func syncChangeTracking(vm *simulator.VirtualMachine, stun bool) error {
	list, err := vmDisks(vm)
	if err != nil {
		return err
	}
	enabled := vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
	off := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff
	layersMu.Lock()
	defer layersMu.Unlock()
	for _, d := range list {
		s := diskFor(vm.Self.Value, d)
		switch {
		case !enabled:
			s.cbtID, s.seq, s.changes = "", 0, nil
		case s.cbtID == "" && (off || stun):
			s.cbtID, s.seq, s.changes = newCBTID(), 0, nil
		}
		setChangeID(vm.Config.Hardware.Device, d.key, s.changeID())
	}
	return nil
}

func (p *proxy) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	body := new(methods.CreateSnapshot_TaskBody)
	if p.target.Type != "VirtualMachine" {
		body.Fault_ = notImplemented(p.target, "CreateSnapshot_Task")
		return body
	}
	var res soap.HasFault
	var fault *soap.Fault
	found := p.withTarget(ctx, func(obj interface{}) {
		vm := obj.(*simulator.VirtualMachine)
		if vm.Config.Template {
			// A template cannot have snapshots (API reference, CreateSnapshot_Task: NotSupported
			// "if this is a template").
			fault = simulator.Fault("a template cannot have snapshots", &types.NotSupported{})
			return
		}
		req.This = p.target
		if req.Quiesce && toolsRunning(vm) && listed(cfg.quiesceFails, vm.Name) {
			// ApplicationQuiesceFault: "creating a quiesced snapshot failed because the
			// (user-supplied) custom pre-freeze script in the virtual machine exited with a
			// non-zero return code" (API reference). The task fails; no snapshot is made.
			res = &methods.CreateSnapshot_TaskBody{Res: &types.CreateSnapshot_TaskResponse{
				Returnval: newTask(p.target, "createSnapshot", nil, &types.ApplicationQuiesceFault{}),
			}}
			return
		}
		res = vm.CreateSnapshotTask(req)
		b, ok := res.(*methods.CreateSnapshot_TaskBody)
		if !ok || b.Res == nil {
			return
		}
		result, terr := taskOutcome(b.Res.Returnval)
		if terr != nil {
			return
		}
		snapRef := result.(types.ManagedObjectReference)
		if err := freezeSnapshot(vm, snapRef, req.Quiesce); err != nil {
			fault = simulator.Fault(err.Error(), &types.FileFault{File: err.Error()})
		}
	})
	if !found {
		body.Fault_ = notFound(p.target)
		return body
	}
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	return res
}

// freezeSnapshot records what the new snapshot froze. The caller holds the VM's lock.
func freezeSnapshot(vm *simulator.VirtualMachine, snapRef types.ManagedObjectReference, quiesce bool) error {
	snap, ok := simulator.Map.Get(snapRef).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return fmt.Errorf("snapshot %s vanished", snapRef.Value)
	}
	// Taking a snapshot stuns and unstuns a running VM: change tracking switched on meanwhile
	// starts here (VDDK programming guide, "Changed Block Tracking on Virtual Disks").
	if err := syncChangeTracking(vm, true); err != nil {
		return err
	}
	list, err := vmDisks(vm)
	if err != nil {
		return err
	}
	// 0.24.2 copies the VM's config into the snapshot by value, so both share the device
	// structs: the snapshot gets its own copy, which later writes do not touch.
	snap.Config.Hardware.Device = copyDevices(vm.Config.Hardware.Device)
	rec := map[int32]*snapshotDisk{}
	layersMu.Lock()
	for _, d := range list {
		s := diskFor(vm.Self.Value, d)
		s.top.frozen = true
		s.top.snapshots++
		rec[d.key] = &snapshotDisk{layer: s.top, changeID: s.changeID(), cbtID: s.cbtID, seq: s.seq}
	}
	snapDisks[snapRef.Value] = rec
	layersMu.Unlock()
	for key, sd := range rec {
		setChangeID(snap.Config.Hardware.Device, key, sd.changeID)
	}
	// Quiescing needs VMware Tools in a running guest; without them the snapshot is taken
	// without quiescing (PowerCLI New-Snapshot: "If the virtual machine is powered off or VMware
	// Tools are not available, the Quiesce parameter is ignored"); the tree says which it was.
	if item := findTreeItem(vm.Snapshot.RootSnapshotList, snapRef); item != nil {
		item.Quiesced = quiesce && vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && toolsRunning(vm)
	}
	return nil
}

// sweepSnapshots releases the layers of every snapshot the simulator no longer has.
func sweepSnapshots() error {
	layersMu.Lock()
	defer layersMu.Unlock()
	var firstErr error
	for value, rec := range snapDisks {
		ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: value}
		if simulator.Map.Get(ref) != nil {
			continue
		}
		delete(snapDisks, value)
		for _, sd := range rec {
			sd.layer.snapshots--
			if err := consolidate(sd.layer); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (p *proxy) RemoveSnapshotTask(ctx *simulator.Context, req *types.RemoveSnapshot_Task) soap.HasFault {
	body := new(methods.RemoveSnapshot_TaskBody)
	res, fault := p.call(ctx, "VirtualMachineSnapshot", "RemoveSnapshot_Task", func(obj interface{}) (res soap.HasFault) {
		req.This = p.target
		res = obj.(*simulator.VirtualMachineSnapshot).RemoveSnapshotTask(ctx, req)
		return res
	})
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	return afterSweep(res)
}

func (p *proxy) RemoveAllSnapshotsTask(ctx *simulator.Context, req *types.RemoveAllSnapshots_Task) soap.HasFault {
	body := new(methods.RemoveAllSnapshots_TaskBody)
	res, fault := p.call(ctx, "VirtualMachine", "RemoveAllSnapshots_Task", func(obj interface{}) (res soap.HasFault) {
		req.This = p.target
		res = obj.(*simulator.VirtualMachine).RemoveAllSnapshotsTask(ctx, req)
		return res
	})
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	return afterSweep(res)
}

func afterSweep(res soap.HasFault) soap.HasFault {
	if err := sweepSnapshots(); err != nil {
		return &methods.RemoveSnapshot_TaskBody{Fault_: simulator.Fault(err.Error(), &types.FileFault{File: err.Error()})}
	}
	return res
}

func (p *proxy) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	body := new(methods.ReconfigVM_TaskBody)
	res, fault := p.call(ctx, "VirtualMachine", "ReconfigVM_Task", func(obj interface{}) (res soap.HasFault) {
		vm := obj.(*simulator.VirtualMachine)
		req.This = p.target
		res = vm.ReconfigVMTask(ctx, req)
		if req.Spec.ChangeTrackingEnabled != nil {
			_ = syncChangeTracking(vm, false)
		}
		return res
	})
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	return res
}

func (p *proxy) DestroyTask(ctx *simulator.Context, req *types.Destroy_Task) soap.HasFault {
	body := new(methods.Destroy_TaskBody)
	res, fault := p.call(ctx, "VirtualMachine", "Destroy_Task", func(obj interface{}) (res soap.HasFault) {
		req.This = p.target
		res = obj.(*simulator.VirtualMachine).DestroyTask(ctx, req)
		return res
	})
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if b, ok := res.(*methods.Destroy_TaskBody); ok && b.Res != nil {
		if _, terr := taskOutcome(b.Res.Returnval); terr == nil {
			_ = sweepSnapshots()
			layersMu.Lock()
			for id, s := range disks {
				if id.vm != p.target.Value {
					continue
				}
				delete(disks, id)
				if s.top.parent != nil && len(s.top.children) == 0 && s.top.snapshots == 0 {
					_ = releaseLayer(s.top)
				}
			}
			layersMu.Unlock()
		}
	}
	return res
}

func (p *proxy) CloneVMTask(ctx *simulator.Context, req *types.CloneVM_Task) soap.HasFault {
	body := new(methods.CloneVM_TaskBody)
	if p.target.Type != "VirtualMachine" {
		body.Fault_ = notImplemented(p.target, "CloneVM_Task")
		return body
	}
	linked := req.Spec.Location.DiskMoveType == string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
	if linked && req.Spec.Snapshot == nil {
		// "for a clone this option is only valid when cloning from a snapshot" (API reference,
		// VirtualMachineRelocateDiskMoveOptions.createNewChildDiskBacking).
		body.Fault_ = simulator.Fault("createNewChildDiskBacking needs spec.snapshot: a linked clone is made from a snapshot",
			&types.InvalidArgument{InvalidProperty: "spec.location.diskMoveType"})
		return body
	}
	var snapRec map[int32]*snapshotDisk
	if req.Spec.Snapshot != nil {
		snap, ok := simulator.Map.Get(*req.Spec.Snapshot).(*simulator.VirtualMachineSnapshot)
		layersMu.Lock()
		snapRec = snapDisks[req.Spec.Snapshot.Value]
		layersMu.Unlock()
		if !ok || snap.Vm != p.target || snapRec == nil {
			body.Fault_ = simulator.Fault(fmt.Sprintf("%s is not a snapshot of %s", req.Spec.Snapshot.Value, p.target.Value),
				&types.InvalidArgument{InvalidProperty: "spec.snapshot"})
			return body
		}
	}
	var res soap.HasFault
	var fault *soap.Fault
	found := p.withTarget(ctx, func(obj interface{}) {
		vm := obj.(*simulator.VirtualMachine)
		src, err := vmDisks(vm)
		if err != nil {
			fault = simulator.Fault(err.Error(), &types.FileFault{File: err.Error()})
			return
		}
		// 0.24.2 passes the source's own device structs to the new VM and clears their file
		// names: it gets copies instead.
		saved := vm.Config.Hardware.Device
		vm.Config.Hardware.Device = copyDevices(saved)
		req.This = p.target
		res = vm.CloneVMTask(ctx, req)
		vm.Config.Hardware.Device = saved
		b, ok := res.(*methods.CloneVM_TaskBody)
		if !ok || b.Res == nil {
			return
		}
		result, terr := taskOutcome(b.Res.Returnval)
		if terr != nil {
			return
		}
		clone, ok := simulator.Map.Get(result.(types.ManagedObjectReference)).(*simulator.VirtualMachine)
		if !ok {
			return
		}
		if err := cloneDisks(vm, src, clone, snapRec, linked); err != nil {
			fault = simulator.Fault(err.Error(), &types.FileFault{File: err.Error()})
		}
	})
	if !found {
		body.Fault_ = notFound(p.target)
		return body
	}
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	return res
}

// cloneDisks gives the clone's disks (paired with the source's in device order) their content.
func cloneDisks(vm *simulator.VirtualMachine, src []vmDisk, clone *simulator.VirtualMachine, snapRec map[int32]*snapshotDisk, linked bool) error {
	var dst []vmDisk
	var err error
	simulator.Map.WithLock(clone, func() {
		clone.Capability.ChangeTrackingSupported = types.NewBool(true)
		dst, err = vmDisks(clone)
	})
	if err != nil {
		return err
	}
	if len(dst) != len(src) {
		return fmt.Errorf("the clone has %d disks, its source %d", len(dst), len(src))
	}
	layersMu.Lock()
	defer layersMu.Unlock()
	for i, d := range dst {
		s := diskFor(vm.Self.Value, src[i])
		from := s.top
		if snapRec != nil {
			from = snapRec[src[i].key].layer
		}
		if linked {
			child, err := childLayer(from, d.path)
			if err != nil {
				return err
			}
			disks[diskID{clone.Self.Value, d.key}] = &diskState{top: child, capacity: from.size}
			if b, ok := d.device.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				parent := types.VirtualDiskFlatVer2BackingInfo{}
				parent.FileName = src[i].fileName
				b.Parent = &parent
			}
			continue
		}
		view, err := viewPath(from)
		if err != nil {
			return err
		}
		if err := copyFile(d.path, view); err != nil {
			return err
		}
		disks[diskID{clone.Self.Value, d.key}] = &diskState{top: &layer{file: d.path, full: true, size: from.size}, capacity: from.size}
	}
	return nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func (p *proxy) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := new(methods.QueryChangedDiskAreasBody)
	if p.target.Type != "VirtualMachine" {
		body.Fault_ = notImplemented(p.target, "QueryChangedDiskAreas")
		return body
	}
	fileFault := func(msg string) {
		body.Fault_ = simulator.Fault(msg, &types.FileFault{File: msg})
	}
	found := p.withTarget(ctx, func(obj interface{}) {
		vm := obj.(*simulator.VirtualMachine)
		list, err := vmDisks(vm)
		if err != nil {
			fileFault(err.Error())
			return
		}
		var disk *vmDisk
		for i := range list {
			if list[i].key == req.DeviceKey {
				disk = &list[i]
			}
		}
		if disk == nil {
			body.Fault_ = simulator.Fault(fmt.Sprintf("%s has no virtual disk with key %d", vm.Name, req.DeviceKey),
				&types.InvalidArgument{InvalidProperty: "deviceKey"})
			return
		}
		if req.StartOffset < 0 || req.StartOffset > disk.capacity {
			body.Fault_ = simulator.Fault(fmt.Sprintf("startOffset %d is outside the disk (%d bytes)", req.StartOffset, disk.capacity),
				&types.InvalidArgument{InvalidProperty: "startOffset"})
			return
		}
		layersMu.Lock()
		defer layersMu.Unlock()
		s := diskFor(vm.Self.Value, *disk)
		upTo := s.seq
		if req.Snapshot != nil {
			rec := snapDisks[req.Snapshot.Value]
			sd := rec[req.DeviceKey]
			if sd == nil {
				body.Fault_ = simulator.Fault(fmt.Sprintf("%s is not a snapshot of %s", req.Snapshot.Value, vm.Name),
					&types.InvalidArgument{InvalidProperty: "snapshot"})
				return
			}
			if sd.cbtID == "" || sd.cbtID != s.cbtID {
				fileFault(fmt.Sprintf("change tracking was not active on disk %d at snapshot %s", req.DeviceKey, req.Snapshot.Value))
				return
			}
			upTo = sd.seq
		} else if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			// Without a snapshot the "current" state is asked about, which "will only work for
			// virtual machines that are powered off" (API reference, QueryChangedDiskAreas).
			fileFault(fmt.Sprintf("%s is %s: QueryChangedDiskAreas without a snapshot works only for a powered-off VM", vm.Name, vm.Runtime.PowerState))
			return
		}
		areas, err := changedAreas(s, strings.TrimSpace(req.ChangeId), upTo, req.StartOffset)
		if err != nil {
			fileFault(err.Error())
			return
		}
		body.Res = &types.QueryChangedDiskAreasResponse{Returnval: types.DiskChangeInfo{
			StartOffset: req.StartOffset,
			Length:      disk.capacity - req.StartOffset,
			ChangedArea: areas,
		}}
	})
	if !found {
		body.Fault_ = notFound(p.target)
	}
	return body
}

// HasPrivilegeOnEntity is the simulator's (every privilege granted), except that the ids named
// in -deny-privileges come back false: a user whose role lacks them, as a pre-flight must
// notice. The answer keeps the order of privId (API reference, HasPrivilegeOnEntity: "an array
// of boolean values ... in the same order as the privileges").
//
// The answer is encoded by a type of ours: govmomi's HasPrivilegeOnEntityResponse tags its []bool
// `omitempty`, which drops every false element when encoding (decoding a real vCenter's answer is
// unaffected), so a denied privilege would vanish and the others shift into its place.
func (p *proxy) HasPrivilegeOnEntity(ctx *simulator.Context, req *types.HasPrivilegeOnEntity) soap.HasFault {
	body := new(hasPrivilegeOnEntityBody)
	if p.target.Type != "AuthorizationManager" {
		body.Fault_ = notImplemented(p.target, "HasPrivilegeOnEntity")
		return body
	}
	if simulator.Map.Get(req.Entity) == nil {
		body.Fault_ = notFound(req.Entity)
		return body
	}
	granted := make([]bool, len(req.PrivId))
	for i, id := range req.PrivId {
		granted[i] = !listed(cfg.denyPrivileges, id)
	}
	body.Res = &HasPrivilegeOnEntityResponse{Returnval: granted}
	return body
}

// HasPrivilegeOnEntityResponse is named as the element it encodes (the simulator takes the
// element name from the type name).
type HasPrivilegeOnEntityResponse struct {
	Returnval []bool `xml:"returnval"`
}

type hasPrivilegeOnEntityBody struct {
	Res    *HasPrivilegeOnEntityResponse `xml:"HasPrivilegeOnEntityResponse,omitempty"`
	Fault_ *soap.Fault                   `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *hasPrivilegeOnEntityBody) Fault() *soap.Fault { return b.Fault_ }

// HasPrivilegeOnEntities: the same answer for several entities at once, one EntityPrivilege per
// entity with one PrivilegeAvailability per privId (API reference,
// AuthorizationManager.HasPrivilegeOnEntities).
func (p *proxy) HasPrivilegeOnEntities(ctx *simulator.Context, req *types.HasPrivilegeOnEntities) soap.HasFault {
	body := new(methods.HasPrivilegeOnEntitiesBody)
	if p.target.Type != "AuthorizationManager" {
		body.Fault_ = notImplemented(p.target, "HasPrivilegeOnEntities")
		return body
	}
	res := &types.HasPrivilegeOnEntitiesResponse{}
	for _, e := range req.Entity {
		if simulator.Map.Get(e) == nil {
			body.Fault_ = notFound(e)
			return body
		}
		ep := types.EntityPrivilege{Entity: e}
		for _, id := range req.PrivId {
			ep.PrivAvailability = append(ep.PrivAvailability, types.PrivilegeAvailability{PrivId: id, IsGranted: !listed(cfg.denyPrivileges, id)})
		}
		res.Returnval = append(res.Returnval, ep)
	}
	body.Res = res
	return body
}
