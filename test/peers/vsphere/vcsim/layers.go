package main

// Disk content across snapshots and linked clones, and Changed Block Tracking.
//
// govmomi 0.24.2's simulator keeps no disk content (its disk files stay empty), its snapshots are
// only a tree of names, and its clones get new, empty disks. A transfer tool that exports a
// running VM through a snapshot needs the content a snapshot froze, so the peer models a disk the
// way the VDDK documentation and the vSphere API reference describe one: a chain of layers. The
// bottom layer is the full disk file (the one inventory.json names); creating a snapshot freezes
// the VM's top layer ("snapshot points are always read-only", API reference,
// VirtualMachineRelocateDiskMoveOptions.createNewChildDiskBacking), and the VM's next write goes
// into a new child layer (a delta) that holds only the areas written since. A linked clone made
// from the snapshot gets a child layer of its own on the frozen one, so it reads the parent disk
// as it was at the snapshot, whatever the running VM writes afterwards.
//
// Removing a snapshot merges the layer it froze with its only child ("consolidation"); a layer a
// linked clone still reads is kept as it is until that clone is destroyed (the peer then merges).
//
// CBT (VirtualMachineConfigSpec.changeTrackingEnabled) gives each disk an id and a counter: the
// disk backing's changeId is "<id>/<counter>", the counter moves with every write, and
// QueryChangedDiskAreas answers from the log of writes since a given changeId.

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/vmware/govmomi/vim25/types"
)

type extent struct{ start, end int64 } // [start, end) in bytes

// addExtent merges [start, end) into a sorted, disjoint list.
func addExtent(list []extent, start, end int64) []extent {
	out := make([]extent, 0, len(list)+1)
	placed := false
	for _, e := range list {
		switch {
		case e.end < start:
			out = append(out, e)
		case end < e.start:
			if !placed {
				out = append(out, extent{start, end})
				placed = true
			}
			out = append(out, e)
		default: // overlapping or touching: widen the new one
			if e.start < start {
				start = e.start
			}
			if e.end > end {
				end = e.end
			}
		}
	}
	if !placed {
		out = append(out, extent{start, end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// layer is one file of a disk chain.
type layer struct {
	file      string   // absolute path on the local file system
	full      bool     // the whole disk (the chain's bottom); otherwise a delta holding extents
	parent    *layer   // nil for the bottom
	extents   []extent // for a delta: the areas it holds
	children  []*layer // deltas on top of it: the VM's own, and those of linked clones
	snapshots int      // snapshots that froze it
	frozen    bool     // read-only: a snapshot or a linked clone reads it; writes go to a child
	size      int64
	view      string // composed flat file of a frozen chain, made on first read
}

// diskState is one disk of one VM: its top layer, and its change tracking.
type diskState struct {
	top      *layer
	capacity int64
	cbtID    string     // "" while change tracking is not active
	seq      int64      // the counter of the current changeId
	changes  []cbtWrite // writes since change tracking became active, oldest first
}

type cbtWrite struct {
	seq        int64
	start, end int64
}

func (d *diskState) changeID() string {
	if d.cbtID == "" {
		return ""
	}
	return fmt.Sprintf("%s/%d", d.cbtID, d.seq)
}

type diskID struct {
	vm  string // VirtualMachine moref value
	key int32  // VirtualDevice.key
}

// snapshotDisk is what a snapshot froze of one disk.
type snapshotDisk struct {
	layer    *layer
	changeID string // "" when change tracking was not active
	cbtID    string
	seq      int64
}

var (
	layersMu   sync.Mutex
	disks      = map[diskID]*diskState{}
	snapDisks  = map[string]map[int32]*snapshotDisk{} // snapshot moref value → device key → disk
	layerCount int
)

// diskFor returns the state of a VM's disk, starting a chain at its file on first use. The
// caller holds layersMu.
func diskFor(vm string, d vmDisk) *diskState {
	id := diskID{vm, d.key}
	if s, ok := disks[id]; ok {
		return s
	}
	s := &diskState{top: &layer{file: d.path, full: true, size: d.capacity}, capacity: d.capacity}
	disks[id] = s
	return s
}

// newCBTID is a disk's change-tracking id: 16 random bytes written as vCenter writes them,
// "52 xx xx ... xx-xx ..." (opaque to clients: only "<id>/<n>" as a whole is passed back).
func newCBTID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52
	s := ""
	for i, c := range b {
		switch {
		case i == 8:
			s += "-"
		case i > 0:
			s += " "
		}
		s += fmt.Sprintf("%02x", c)
	}
	return s
}

// childLayer makes a new, empty delta on top of parent, in a file next to parent's bottom.
func childLayer(parent *layer, file string) (*layer, error) {
	if file == "" {
		layerCount++
		bottom := parent
		for bottom.parent != nil {
			bottom = bottom.parent
		}
		ext := filepath.Ext(bottom.file)
		file = fmt.Sprintf("%s-%06d%s", bottom.file[:len(bottom.file)-len(ext)], layerCount, ext)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(parent.size)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	child := &layer{file: file, parent: parent, size: parent.size}
	parent.children = append(parent.children, child)
	parent.frozen = true
	return child, nil
}

// guestWrite writes data at offset into the disk as the running guest would: into the top
// layer, or into a new delta when the top is frozen. Returns the disk's changeId after it.
func guestWrite(vm string, d vmDisk, offset int64, data []byte) (string, error) {
	layersMu.Lock()
	defer layersMu.Unlock()
	s := diskFor(vm, d)
	end := offset + int64(len(data))
	if offset < 0 || end > s.capacity {
		return "", fmt.Errorf("write [%d, %d) is outside the disk (capacity %d bytes)", offset, end, s.capacity)
	}
	if s.top.frozen {
		child, err := childLayer(s.top, "")
		if err != nil {
			return "", err
		}
		s.top = child
	}
	if err := writeAt(s.top.file, offset, data); err != nil {
		return "", err
	}
	if !s.top.full {
		s.top.extents = addExtent(s.top.extents, offset, end)
	}
	if s.cbtID != "" && len(data) > 0 {
		s.seq++
		s.changes = append(s.changes, cbtWrite{seq: s.seq, start: offset, end: end})
	}
	return s.changeID(), nil
}

func writeAt(file string, offset int64, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, offset); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// chainDeltas returns the deltas from the bottom's child up to l, and the bottom.
func chainDeltas(l *layer) (*layer, []*layer) {
	var deltas []*layer
	for ; l.parent != nil; l = l.parent {
		if len(l.extents) > 0 {
			deltas = append([]*layer{l}, deltas...)
		}
	}
	return l, deltas
}

// viewPath returns a flat file with the content of the chain ending at l: the bottom file itself
// when no delta of the chain holds anything, else a composed copy (kept for a frozen layer,
// whose content cannot change). The caller holds layersMu.
func viewPath(l *layer) (string, error) {
	bottom, deltas := chainDeltas(l)
	if len(deltas) == 0 {
		return bottom.file, nil
	}
	if l.frozen && l.view != "" {
		return l.view, nil
	}
	dir := filepath.Join(cfg.dataDir, "views")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	layerCount++
	out := filepath.Join(dir, fmt.Sprintf("view-%06d.flat", layerCount))
	if err := composeView(out, bottom, deltas); err != nil {
		return "", err
	}
	if l.frozen {
		l.view = out
	}
	return out, nil
}

func composeView(out string, bottom *layer, deltas []*layer) error {
	src, err := os.Open(bottom.file)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil { // copy_file_range on Linux
		return err
	}
	for _, d := range deltas {
		if err := copyExtents(dst, d); err != nil {
			return err
		}
	}
	return nil
}

// copyExtents writes the areas a delta holds into dst at the same offsets.
func copyExtents(dst *os.File, d *layer) error {
	f, err := os.Open(d.file)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range d.extents {
		if _, err := dst.Seek(e.start, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(dst, io.NewSectionReader(f, e.start, e.end-e.start)); err != nil {
			return err
		}
	}
	return nil
}

// consolidate merges a layer that no snapshot freezes any more with its only child, and
// unfreezes a layer nothing reads. Called after a snapshot is removed or a clone destroyed.
func consolidate(l *layer) error {
	if l == nil || l.snapshots > 0 {
		return nil
	}
	switch {
	case len(l.children) == 0:
		l.frozen = false
		l.view = ""
		return nil
	case len(l.children) > 1 || isTop(l):
		// Several children (a linked clone among them) read it, or it is a VM's own disk that a
		// linked clone reads: it stays frozen, and the VM's next write goes to a new delta.
		return nil
	}
	c := l.children[0]
	// c's content is written into l's file; then c takes l's place (everything that points at c
	// stays valid: snapshot records, the VM's top, c's own children).
	dst, err := os.OpenFile(l.file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = copyExtents(dst, c)
	_ = dst.Close()
	if err != nil {
		return err
	}
	merged := l.extents
	for _, e := range c.extents {
		merged = addExtent(merged, e.start, e.end)
	}
	_ = os.Remove(c.file)
	c.file, c.full, c.extents, c.parent = l.file, l.full, merged, l.parent
	if c.view != "" {
		_ = os.Remove(c.view)
		c.view = ""
	}
	if l.view != "" {
		_ = os.Remove(l.view)
	}
	if p := c.parent; p != nil {
		for i, sib := range p.children {
			if sib == l {
				p.children[i] = c
			}
		}
	}
	if c.snapshots == 0 && len(c.children) == 0 {
		c.frozen = false
	}
	return nil
}

// isTop says whether l is some VM's current layer. The caller holds layersMu.
func isTop(l *layer) bool {
	for _, s := range disks {
		if s.top == l {
			return true
		}
	}
	return false
}

// releaseLayer drops a child from its parent (a destroyed clone's disk) and consolidates.
func releaseLayer(l *layer) error {
	p := l.parent
	if p == nil {
		return nil
	}
	for i, c := range p.children {
		if c == l {
			p.children = append(p.children[:i], p.children[i+1:]...)
			break
		}
	}
	return consolidate(p)
}

// changedAreas answers QueryChangedDiskAreas for one disk: the areas written after changeID up
// to the counter `upTo`, within [start, capacity), rounded out to 512-byte sectors.
func changedAreas(s *diskState, changeID string, upTo int64, start int64) ([]types.DiskChangeExtent, error) {
	var out []extent
	if changeID == "*" {
		// "*": every allocated area. The peer counts the whole disk as allocated.
		out = []extent{{0, s.capacity}}
	} else {
		var id string
		var from int64
		i := len(changeID) - 1
		for i >= 0 && changeID[i] != '/' {
			i--
		}
		if i < 0 {
			return nil, fmt.Errorf("not a changeId: %q", changeID)
		}
		id = changeID[:i]
		if _, err := fmt.Sscanf(changeID[i+1:], "%d", &from); err != nil {
			return nil, fmt.Errorf("not a changeId: %q", changeID)
		}
		if s.cbtID == "" {
			return nil, fmt.Errorf("change tracking is not active on this disk")
		}
		if id != s.cbtID {
			return nil, fmt.Errorf("changeId %q is from another change-tracking epoch of this disk (now %s): tracking was reset", changeID, s.cbtID)
		}
		if from > upTo {
			return nil, fmt.Errorf("changeId %q is later than the state asked about (%d)", changeID, upTo)
		}
		for _, w := range s.changes {
			if w.seq > from && w.seq <= upTo {
				a, b := w.start&^511, (w.end+511)&^511
				if b > s.capacity {
					b = s.capacity
				}
				out = addExtent(out, a, b)
			}
		}
	}
	var res []types.DiskChangeExtent
	for _, e := range out {
		if e.end <= start {
			continue
		}
		if e.start < start {
			e.start = start
		}
		res = append(res, types.DiskChangeExtent{Start: e.start, Length: e.end - e.start})
	}
	return res, nil
}

// resolveViews points each disk's path at the file with its current content (layers.go): the
// disk file itself unless snapshots or a linked clone's parent hold part of it elsewhere.
func resolveViews(vm string, list []vmDisk) error {
	layersMu.Lock()
	defer layersMu.Unlock()
	for i := range list {
		s, ok := disks[diskID{vm, list[i].key}]
		if !ok {
			continue
		}
		view, err := viewPath(s.top)
		if err != nil {
			return err
		}
		list[i].path = view
	}
	return nil
}
