package main

// -live: the peer's snapshots, linked clones and change tracking, driven by govmomi's own client
// (object.VirtualMachine.Reconfigure, CreateSnapshot, Clone, QueryChangedDiskAreas — the last one
// reads the base snapshot's changeId from its config.hardware itself, as the VDDK guide says).
//
//  1. Reconfigure changeTrackingEnabled=true on the (running) VM; CreateSnapshot "a".
//  2. The guest writes 512 bytes at offset 4096 of disk 0 (the peer's /_test endpoint).
//  3. CreateSnapshot "b"; QueryChangedDiskAreas(a, b, disk 0, 0) must answer exactly that area.
//  4. Clone from "a" with diskMoveType createNewChildDiskBacking; export the clone: its disks
//     must hash to the VM's disks as the peer started them (inventory.json), not the write.
//  5. Destroy the clone, RemoveSnapshot "b" and "a".

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"path/filepath"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type liveReport struct {
	ChangedAreas []types.DiskChangeExtent `json:"changedAreas"`
	Clone        string                   `json:"clone"`
	CloneSHA256  []string                 `json:"cloneSha256"`
}

func runLive(ctx context.Context, c *vim25.Client, sc *soap.Client, finder *find.Finder, vm *object.VirtualMachine, dir string) (*liveReport, error) {
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(true)})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return nil, at("reconfigure changeTrackingEnabled", err)
	}
	snapshot := func(name string) (types.ManagedObjectReference, error) {
		task, err := vm.CreateSnapshot(ctx, name, "", false, false)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		res, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		return res.Result.(types.ManagedObjectReference), nil
	}
	a, err := snapshot("a")
	if err != nil {
		return nil, at("create snapshot a", err)
	}
	var name string
	if name, err = vm.ObjectName(ctx); err != nil {
		return nil, at("vm name", err)
	}
	if err := guestWrite(sc, name, 4096, bytes.Repeat([]byte{0xAB}, 512)); err != nil {
		return nil, at("guest write", err)
	}
	b, err := snapshot("b")
	if err != nil {
		return nil, at("create snapshot b", err)
	}
	devices, err := vm.Device(ctx)
	if err != nil {
		return nil, at("devices", err)
	}
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(disks) == 0 {
		return nil, at("devices", errors.New("the VM has no disk"))
	}
	disk := disks[0].(*types.VirtualDisk)
	info, err := vm.QueryChangedDiskAreas(ctx, &a, &b, disk, 0)
	if err != nil {
		return nil, at("query changed disk areas", err)
	}
	r := &liveReport{ChangedAreas: info.ChangedArea}

	folders, err := finder.DefaultFolder(ctx)
	if err != nil {
		return nil, at("folder", err)
	}
	task, err = vm.Clone(ctx, folders, "govmomi-linked-clone", types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{DiskMoveType: string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)},
		Snapshot: &a,
	})
	if err != nil {
		return nil, at("clone", err)
	}
	res, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, at("clone", err)
	}
	clone := object.NewVirtualMachine(c, res.Result.(types.ManagedObjectReference))
	r.Clone = clone.Reference().Value

	lease, err := clone.Export(ctx)
	if err != nil {
		return nil, at("export clone", err)
	}
	linfo, err := lease.Wait(ctx, nil)
	if err != nil {
		return nil, at("export clone lease wait", err)
	}
	for i, item := range linfo.Items {
		local := filepath.Join(dir, fmt.Sprintf("clone-%d-%s", i, path.Base(item.Path)))
		if err := lease.DownloadFile(ctx, local, item, soap.DefaultDownload); err != nil {
			_ = lease.Abort(ctx, nil)
			return nil, at("download clone disk", err)
		}
		_, sum, err := fileSHA256(local)
		if err != nil {
			return nil, at("hash", err)
		}
		r.CloneSHA256 = append(r.CloneSHA256, sum)
	}
	if err := lease.Complete(ctx); err != nil {
		return nil, at("export clone complete", err)
	}
	if task, err = clone.Destroy(ctx); err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return nil, at("destroy clone", err)
	}
	for _, n := range []string{"b", "a"} {
		task, err := vm.RemoveSnapshot(ctx, n, false, nil)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return nil, at("remove snapshot "+n, err)
		}
	}
	return r, nil
}

// guestWrite plays the guest through the peer's test endpoint (not part of the vSphere API),
// with the soap client's own HTTP client (it trusts the SDK host by its thumbprint).
func guestWrite(sc *soap.Client, vm string, offset int64, data []byte) error {
	u := sc.URL()
	u.Path = fmt.Sprintf("/_test/vm/%s/disk/0/write", vm)
	u.RawQuery = fmt.Sprintf("offset=%d", offset)
	u.User = nil
	res, err := sc.Client.Post(u.String(), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", u.Path, res.Status)
	}
	return nil
}
