package main

// Routing selected SOAP calls to our own code.
//
// The simulator dispatches a call by looking up `_this` in its registry and calling the method
// of the same name on the object found. We cannot add ExportVm to *simulator.VirtualMachine, and
// replacing VMs by wrapper types breaks the simulator (its code asserts *VirtualMachine all over,
// and a pointer-embedding wrapper makes the PropertyCollector panic). So the front handler
// rewrites `_this` of a few methods to a stand-in object of ours, keyed by the original
// reference, and lets the simulator do the rest as usual: session check, locking, dispatch and
// the encoding of the response or fault.
//
//	ExportVm          VirtualMachine      → proxy.ExportVm
//	ExportVApp        VirtualApp          → proxy.ExportVApp
//	CreateDescriptor  OvfManager          → proxy.CreateDescriptor
//	ImportVApp        ResourcePool/vApp   → proxy.ImportVApp (the simulator's, then our lease)
//	CreateImportSpec  OvfManager          → proxy.CreateImportSpec (the simulator's, but a fault
//	                                        for descriptors that would make it dereference nil)
//	CreateSnapshot_Task, RemoveSnapshot_Task, RemoveAllSnapshots_Task, CloneVM_Task,
//	ReconfigVM_Task, Destroy_Task (of a VM), QueryChangedDiskAreas
//	                                      → proxy (snapshot.go): disk content across snapshots
//	                                        and linked clones, change tracking
//	HasPrivilegeOnEntity(ies) AuthorizationManager → proxy: -deny-privileges
//	WaitForUpdatesEx  PropertyCollector   → waitProxy (waitupdates.go): the simulator's, with
//	WaitForUpdates                          versions that change, or MethodNotFound with
//	                                        -no-wait-for-updates

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

type frontHandler struct {
	next http.Handler
}

var interceptedMethods = [][]byte{
	[]byte("ExportVm"), []byte("ExportVApp"), []byte("CreateDescriptor"), []byte("ImportVApp"), []byte("CreateImportSpec"),
	[]byte("WaitForUpdates"), // and WaitForUpdatesEx
	[]byte("CreateSnapshot_Task"), []byte("RemoveSnapshot_Task"), []byte("RemoveAllSnapshots_Task"),
	[]byte("CloneVM_Task"), []byte("ReconfigVM_Task"), []byte("Destroy_Task"), []byte("QueryChangedDiskAreas"),
	[]byte("HasPrivilegeOnEntity"), []byte("HasPrivilegeOnEntities"),
}

const maxSOAPRequest = 64 << 20

func (h *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/nfc/") {
		// Also in separate mode, where it gets a 404: a client that sends its transfers to the
		// vCenter shows up in /_test/nfc-requests.
		recordNFCRequest("sdk", r)
	}
	if r.Method == http.MethodPost && r.URL.Path == simulator.Map.Path {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSOAPRequest))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if rewritten := rewriteRequest(body); rewritten != nil {
			body = rewritten
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	h.next.ServeHTTP(w, r)
}

// rewriteRequest returns the request re-encoded with `_this` pointing at our proxy, or nil when
// the request is not one of ours (or does not decode: the simulator then reports the fault).
func rewriteRequest(body []byte) []byte {
	hit := false
	for _, name := range interceptedMethods {
		if bytes.Contains(body, name) {
			hit = true
			break
		}
	}
	if !hit {
		return nil
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return nil
	}
	var req interface{}
	switch b := method.Body.(type) {
	case *types.ExportVm:
		b.This = proxyFor(b.This)
		req = &methods.ExportVmBody{Req: b}
	case *types.ExportVApp:
		b.This = proxyFor(b.This)
		req = &methods.ExportVAppBody{Req: b}
	case *types.CreateDescriptor:
		b.This = proxyFor(b.This)
		req = &methods.CreateDescriptorBody{Req: b}
	case *types.ImportVApp:
		b.This = proxyFor(b.This)
		req = &methods.ImportVAppBody{Req: b}
	case *types.CreateImportSpec:
		b.This = proxyFor(b.This)
		req = &methods.CreateImportSpecBody{Req: b}
	case *types.CreateSnapshot_Task:
		b.This = proxyFor(b.This)
		req = &methods.CreateSnapshot_TaskBody{Req: b}
	case *types.RemoveSnapshot_Task:
		b.This = proxyFor(b.This)
		req = &methods.RemoveSnapshot_TaskBody{Req: b}
	case *types.RemoveAllSnapshots_Task:
		b.This = proxyFor(b.This)
		req = &methods.RemoveAllSnapshots_TaskBody{Req: b}
	case *types.CloneVM_Task:
		b.This = proxyFor(b.This)
		req = &methods.CloneVM_TaskBody{Req: b}
	case *types.ReconfigVM_Task:
		b.This = proxyFor(b.This)
		req = &methods.ReconfigVM_TaskBody{Req: b}
	case *types.Destroy_Task:
		if b.This.Type != "VirtualMachine" {
			return nil // folders, pools...: the simulator's own
		}
		b.This = proxyFor(b.This)
		req = &methods.Destroy_TaskBody{Req: b}
	case *types.QueryChangedDiskAreas:
		b.This = proxyFor(b.This)
		req = &methods.QueryChangedDiskAreasBody{Req: b}
	case *types.HasPrivilegeOnEntity:
		b.This = proxyFor(b.This)
		req = &methods.HasPrivilegeOnEntityBody{Req: b}
	case *types.HasPrivilegeOnEntities:
		b.This = proxyFor(b.This)
		req = &methods.HasPrivilegeOnEntitiesBody{Req: b}
	case *types.WaitForUpdatesEx:
		b.This = waitProxyFor(b.This)
		req = &methods.WaitForUpdatesExBody{Req: b}
	case *types.WaitForUpdates:
		b.This = waitProxyFor(b.This)
		req = &methods.WaitForUpdatesBody{Req: b}
	default:
		return nil
	}
	out, err := xml.Marshal(soap.Envelope{Body: req})
	if err != nil {
		log.Printf("front: re-encoding %s: %s", method.Name, err)
		return nil
	}
	return append([]byte(xml.Header), out...)
}

// proxy stands in for one managed object (target) for the intercepted methods.
type proxy struct {
	Self   types.ManagedObjectReference
	target types.ManagedObjectReference
}

func (p *proxy) Reference() types.ManagedObjectReference { return p.Self }

const proxyType = "SneakernetProxy"

func proxyFor(target types.ManagedObjectReference) types.ManagedObjectReference {
	return standIn(proxyType, target, func(self types.ManagedObjectReference) mo.Reference {
		return &proxy{Self: self, target: target}
	})
}

var standInMu sync.Mutex

// standIn returns the reference of the stand-in of type kind for target, registering the one
// newStandIn makes the first time it is asked for (a stand-in lives as long as the simulator).
func standIn(
	kind string,
	target types.ManagedObjectReference,
	newStandIn func(self types.ManagedObjectReference) mo.Reference,
) types.ManagedObjectReference {
	ref := types.ManagedObjectReference{Type: kind, Value: target.Type + ":" + target.Value}
	standInMu.Lock()
	defer standInMu.Unlock()
	if simulator.Map.Get(ref) == nil {
		simulator.Map.Put(newStandIn(ref))
	}
	return ref
}

// withTarget runs f with the target object locked, as the simulator would have locked it for a
// direct call, and with ctx.Caller naming it, so that nested ctx.WithLock calls on the target
// inside simulator code do not try to take the lock a second time.
func (p *proxy) withTarget(ctx *simulator.Context, f func(obj interface{})) bool {
	obj := simulator.Map.Get(p.target)
	if obj == nil {
		return false
	}
	caller := ctx.Caller
	simulator.Map.WithLock(obj, func() {
		ctx.Caller = &p.target
		f(obj)
	})
	ctx.Caller = caller
	return true
}

// call runs method f on the target when it is of type typ (withTarget), or gives the fault a
// server answers: MethodNotFound for another type, ManagedObjectNotFound for a gone object.
func (p *proxy) call(ctx *simulator.Context, typ, method string, f func(obj interface{}) soap.HasFault) (soap.HasFault, *soap.Fault) {
	if p.target.Type != typ {
		return nil, notImplemented(p.target, method)
	}
	var res soap.HasFault
	if !p.withTarget(ctx, func(obj interface{}) { res = f(obj) }) {
		return nil, notFound(p.target)
	}
	return res, nil
}

func notFound(ref types.ManagedObjectReference) *soap.Fault {
	return simulator.Fault(fmt.Sprintf("managed object not found: %s", ref), &types.ManagedObjectNotFound{Obj: ref})
}

func notImplemented(ref types.ManagedObjectReference, method string) *soap.Fault {
	return simulator.Fault(fmt.Sprintf("%s does not implement: %s", ref, method),
		&types.MethodNotFound{Receiver: ref, Method: method})
}

// exportSource is what an export needs to know about one VM, copied under the VM's lock.
type exportSource struct {
	ref        types.ManagedObjectReference
	name       string
	powerState types.VirtualMachinePowerState
	disks      []vmDisk
}

func readExportSource(ref types.ManagedObjectReference) (*exportSource, *soap.Fault) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, notFound(ref)
	}
	var src *exportSource
	var err error
	simulator.Map.WithLock(vm, func() {
		src = &exportSource{ref: vm.Self, name: vm.Name, powerState: vm.Runtime.PowerState}
		src.disks, err = vmDisks(vm)
		if err == nil {
			err = resolveViews(vm.Self.Value, src.disks)
		}
	})
	if err != nil {
		return nil, simulator.Fault(err.Error(), &types.FileFault{File: err.Error()})
	}
	return src, nil
}

// poweredOnFault is what a real vCenter answers to ExportVm on a running VM.
func poweredOnFault(src *exportSource) *soap.Fault {
	return simulator.Fault(
		fmt.Sprintf("The attempted operation cannot be performed in the current state (%s): %s", src.powerState, src.name),
		&types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff,
			ExistingState:  src.powerState,
		})
}

// exportDevices builds the device URLs of an export lease: disk-<n>.vmdk, numbered across all
// VMs of the lease in order, each served from the VM's disk file.
func exportDevices(srcs []*exportSource, leaseID string) []*leaseDevice {
	var devices []*leaseDevice
	for _, src := range srcs {
		for _, d := range src.disks {
			name := fmt.Sprintf("disk-%d.vmdk", len(devices))
			devices = append(devices, &leaseDevice{
				name:     name,
				path:     d.path,
				capacity: d.capacity,
				url: types.HttpNfcLeaseDeviceUrl{
					Key:       diskDeviceKey(src.ref, d.index),
					ImportKey: fmt.Sprintf("/%s/disk:%d", src.name, d.index),
					Url:       deviceURL(leaseID, name),
					Disk:      types.NewBool(true),
					TargetId:  name,
				},
			})
		}
	}
	return devices
}

func createExportLease(entity types.ManagedObjectReference, srcs []*exportSource) types.ManagedObjectReference {
	l := newLease(exportLease, entity, func(id string) []*leaseDevice { return exportDevices(srcs, id) })
	return l.Self
}

func (p *proxy) ExportVm(ctx *simulator.Context, req *types.ExportVm) soap.HasFault {
	body := new(methods.ExportVmBody)
	if p.target.Type != "VirtualMachine" {
		body.Fault_ = notImplemented(p.target, "ExportVm")
		return body
	}
	src, fault := readExportSource(p.target)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if src.powerState != types.VirtualMachinePowerStatePoweredOff {
		body.Fault_ = poweredOnFault(src)
		return body
	}
	body.Res = &types.ExportVmResponse{Returnval: createExportLease(src.ref, []*exportSource{src})}
	return body
}

func (p *proxy) ExportVApp(ctx *simulator.Context, req *types.ExportVApp) soap.HasFault {
	body := new(methods.ExportVAppBody)
	if p.target.Type != "VirtualApp" {
		body.Fault_ = notImplemented(p.target, "ExportVApp")
		return body
	}
	app, ok := simulator.Map.Get(p.target).(*simulator.VirtualApp)
	if !ok {
		body.Fault_ = notFound(p.target)
		return body
	}
	var vms []types.ManagedObjectReference
	simulator.Map.WithLock(app, func() { vms = append(vms, app.Vm...) })
	var srcs []*exportSource
	for _, ref := range vms {
		src, fault := readExportSource(ref)
		if fault != nil {
			body.Fault_ = fault
			return body
		}
		if src.powerState != types.VirtualMachinePowerStatePoweredOff {
			body.Fault_ = poweredOnFault(src)
			return body
		}
		srcs = append(srcs, src)
	}
	body.Res = &types.ExportVAppResponse{Returnval: createExportLease(p.target, srcs)}
	return body
}

// ImportVApp lets the simulator create the VM and its lease, then swaps that lease for one of
// ours with the same device URLs, so uploads are stored and the lease has a life cycle.
func (p *proxy) ImportVApp(ctx *simulator.Context, req *types.ImportVApp) soap.HasFault {
	var res soap.HasFault
	found := p.withTarget(ctx, func(obj interface{}) {
		req.This = p.target
		switch pool := obj.(type) {
		case *simulator.ResourcePool:
			res = pool.ImportVApp(ctx, req)
		case *simulator.VirtualApp:
			res = pool.ImportVApp(ctx, req)
		default:
			res = &methods.ImportVAppBody{Fault_: notImplemented(p.target, "ImportVApp")}
		}
	})
	if !found {
		return &methods.ImportVAppBody{Fault_: notFound(p.target)}
	}
	body, ok := res.(*methods.ImportVAppBody)
	if !ok || body.Res == nil {
		return res
	}

	simRef := body.Res.Returnval
	simLease, ok := ctx.Session.Get(simRef).(*simulator.HttpNfcLease)
	if !ok || simLease.Info == nil {
		return res
	}
	// The simulator's lease stays in its private NFC table, but nothing reaches it: /nfc/ is ours.
	ctx.Session.Remove(simRef)

	l := newLease(importLease, simLease.Info.Entity, func(id string) []*leaseDevice {
		var devices []*leaseDevice
		for _, d := range simLease.Info.DeviceUrl {
			name := d.TargetId
			if name == "" {
				name = path.Base(d.Url)
			}
			u := d
			u.Url = deviceURL(id, name)
			devices = append(devices, &leaseDevice{name: name, path: uploadPath(id, name), url: u})
		}
		return devices
	})
	body.Res.Returnval = l.Self
	return body
}

func (p *proxy) CreateImportSpec(ctx *simulator.Context, req *types.CreateImportSpec) soap.HasFault {
	body := new(methods.CreateImportSpecBody)
	env, err := ovf.Unmarshal(strings.NewReader(req.OvfDescriptor))
	if err != nil {
		body.Fault_ = simulator.Fault(err.Error(), &types.InvalidArgument{InvalidProperty: "ovfDescriptor"})
		return body
	}
	if env.VirtualSystem == nil || len(env.VirtualSystem.VirtualHardware) == 0 {
		// govmomi 0.24.2 dereferences nil here (a VirtualSystemCollection, i.e. a vApp OVF).
		body.Fault_ = simulator.Fault("only an OVF with a single VirtualSystem (with a VirtualHardwareSection) can be imported by this simulator",
			&types.NotSupported{})
		return body
	}
	if problem := importSpecCrash(env); problem != "" {
		body.Fault_ = simulator.Fault("invalid OVF descriptor: "+problem, &types.InvalidArgument{InvalidProperty: "ovfDescriptor"})
		return body
	}
	var res soap.HasFault
	found := p.withTarget(ctx, func(obj interface{}) {
		req.This = p.target
		if om, ok := obj.(*simulator.OvfManager); ok {
			res = om.CreateImportSpec(ctx, req)
		} else {
			res = &methods.CreateImportSpecBody{Fault_: notImplemented(p.target, "CreateImportSpec")}
		}
	})
	if !found {
		body.Fault_ = notFound(p.target)
		return body
	}
	return res
}

func (p *proxy) CreateDescriptor(ctx *simulator.Context, req *types.CreateDescriptor) soap.HasFault {
	body := new(methods.CreateDescriptorBody)
	if p.target.Type != "OvfManager" {
		body.Fault_ = notImplemented(p.target, "CreateDescriptor")
		return body
	}
	result, fault := createDescriptor(req.Obj, req.Cdp)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	body.Res = &types.CreateDescriptorResponse{Returnval: *result}
	return body
}

// importSpecCrash names what in a descriptor would make govmomi 0.24.2's CreateImportSpec
// dereference nil or index out of range (the request would die with a closed connection), so
// that the client gets a fault instead. A real vCenter rejects such descriptors too.
func importSpecCrash(env *ovf.Envelope) string {
	hw := env.VirtualSystem.VirtualHardware[0]
	if hw.System == nil {
		return "the VirtualHardwareSection has no System element"
	}
	for _, item := range hw.Item {
		if item.ResourceType == nil {
			return fmt.Sprintf("Item %q has no ResourceType", item.InstanceID)
		}
		switch *item.ResourceType {
		case 15, 17: // CD/DVD drive, disk: attached to a controller
			if item.Parent == nil {
				return fmt.Sprintf("Item %q has no Parent", item.InstanceID)
			}
		}
		if *item.ResourceType != 17 {
			continue
		}
		if len(item.HostResource) == 0 {
			return fmt.Sprintf("disk Item %q has no HostResource", item.InstanceID)
		}
		found := false
		if env.Disk != nil {
			for _, d := range env.Disk.Disks {
				if strings.HasSuffix(item.HostResource[0], d.DiskID) {
					found = true
					if d.FileRef == nil && len(env.References) > 0 {
						return fmt.Sprintf("Disk %q has no fileRef", d.DiskID)
					}
					break
				}
			}
		}
		if !found {
			return fmt.Sprintf("disk Item %q refers to %q, which is not in the DiskSection", item.InstanceID, item.HostResource[0])
		}
	}
	return ""
}
