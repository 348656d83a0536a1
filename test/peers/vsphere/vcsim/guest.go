package main

// The test control endpoint's VM requests: a test plays the guest of a running VM (it writes
// into a disk) and sees what is on the vCenter (VMs, snapshots, change tracking) without SOAP.
//
//	GET  /_test/vms                                → JSON array, one entry per VM and template:
//	                                                 {moref, name, powerState, template,
//	                                                 toolsRunning, changeTrackingEnabled,
//	                                                 snapshots: [{moref, name, quiesced}],
//	                                                 disks: [{key, changeId}]}
//	POST /_test/vm/<name or moref>/disk/<n>/write?offset=<bytes>
//	                                               → writes the request body into the VM's disk
//	                                                 n (0-based, device order) at offset, as its
//	                                                 guest would; 200 {changeId}; 404 unknown VM
//	                                                 or disk; 400 outside the disk
//
// Not part of the vSphere API: a guest writes through its own OS, never through vCenter.

import (
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type vmSnapshotStatus struct {
	Moref    string `json:"moref"`
	Name     string `json:"name"`
	Quiesced bool   `json:"quiesced"`
}

type vmDiskStatus struct {
	Key      int32  `json:"key"`
	ChangeID string `json:"changeId"`
}

type vmStatus struct {
	Moref                 string             `json:"moref"`
	Name                  string             `json:"name"`
	PowerState            string             `json:"powerState"`
	Template              bool               `json:"template"`
	ToolsRunning          bool               `json:"toolsRunning"`
	ChangeTrackingEnabled bool               `json:"changeTrackingEnabled"`
	Snapshots             []vmSnapshotStatus `json:"snapshots"`
	Disks                 []vmDiskStatus     `json:"disks"`
}

func flattenSnapshots(list []types.VirtualMachineSnapshotTree, out []vmSnapshotStatus) []vmSnapshotStatus {
	for _, t := range list {
		out = append(out, vmSnapshotStatus{Moref: t.Snapshot.Value, Name: t.Name, Quiesced: t.Quiesced})
		out = flattenSnapshots(t.ChildSnapshotList, out)
	}
	return out
}

func findVM(nameOrMoref string) *simulator.VirtualMachine {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Self.Value == nameOrMoref || vm.Name == nameOrMoref {
			return vm
		}
	}
	return nil
}

func serveVMControl(w http.ResponseWriter, r *http.Request, p []string, reply func(int, interface{})) {
	switch {
	case len(p) == 1 && p[0] == "vms" && r.Method == http.MethodGet:
		all := []vmStatus{}
		for _, e := range simulator.Map.All("VirtualMachine") {
			vm := e.(*simulator.VirtualMachine)
			simulator.Map.WithLock(vm, func() {
				s := vmStatus{
					Moref:                 vm.Self.Value,
					Name:                  vm.Name,
					PowerState:            string(vm.Runtime.PowerState),
					Template:              vm.Config.Template,
					ToolsRunning:          toolsRunning(vm),
					ChangeTrackingEnabled: vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled,
					Snapshots:             []vmSnapshotStatus{},
					Disks:                 []vmDiskStatus{},
				}
				if vm.Snapshot != nil {
					s.Snapshots = flattenSnapshots(vm.Snapshot.RootSnapshotList, s.Snapshots)
				}
				for _, d := range vm.Config.Hardware.Device {
					if disk, ok := d.(*types.VirtualDisk); ok {
						ds := vmDiskStatus{Key: disk.Key}
						if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
							ds.ChangeID = b.ChangeId
						}
						s.Disks = append(s.Disks, ds)
					}
				}
				all = append(all, s)
			})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		reply(http.StatusOK, all)
	case len(p) == 5 && p[0] == "vm" && p[2] == "disk" && p[4] == "write" && r.Method == http.MethodPost:
		vm := findVM(p[1])
		if vm == nil {
			reply(http.StatusNotFound, map[string]string{"error": "no VM named " + p[1]})
			return
		}
		n, err := strconv.Atoi(p[3])
		offset, err2 := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
		if err != nil || err2 != nil {
			reply(http.StatusBadRequest, map[string]string{"error": "want /_test/vm/<vm>/disk/<n>/write?offset=<bytes>"})
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			reply(http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		var list []vmDisk
		simulator.Map.WithLock(vm, func() { list, err = vmDisks(vm) })
		if err != nil || n < 0 || n >= len(list) {
			reply(http.StatusNotFound, map[string]string{"error": "no such disk of " + vm.Name})
			return
		}
		changeID, err := guestWrite(vm.Self.Value, list[n], offset, data)
		if err != nil {
			reply(http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		simulator.Map.WithLock(vm, func() { setChangeID(vm.Config.Hardware.Device, list[n].key, changeID) })
		reply(http.StatusOK, map[string]string{"changeId": changeID})
	default:
		reply(http.StatusNotFound, map[string]string{"error": "unknown control request"})
	}
}
