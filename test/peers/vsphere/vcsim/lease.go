package main

// HttpNfcLease with a life cycle, for both export and import leases.
//
// The simulator's own lease is ready at once, never times out and has no GetManifest. Ours is
// registered in the global simulator.Map under a reference of type HttpNfcLease, so the
// simulator dispatches the HttpNfcLease* SOAP methods to the methods below and its
// PropertyCollector reads state/info/error from the embedded mo.HttpNfcLease like any lease.
//
// Locking: every field is guarded by the simulator's per-object lock (simulator.Map.WithLock on
// the lease). The simulator takes that lock around every SOAP method call on the lease and around
// property collection; timers and the NFC handler take it explicitly.

import (
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type leaseKind string

const (
	exportLease leaseKind = "export"
	importLease leaseKind = "import"
)

// leaseDevice is one device URL of a lease and the local file behind it.
type leaseDevice struct {
	url  types.HttpNfcLeaseDeviceUrl
	name string // last path element of the device URL
	// export: the disk file that is served; import: where uploaded bytes are written.
	path     string
	capacity int64 // bytes, export only
}

type nfcLease struct {
	// Must stay the first field: the simulator's PropertyCollector finds the managed object by
	// descending into field 0 until it reaches a type of package mo.
	mo.HttpNfcLease

	id      string
	kind    leaseKind
	devices []*leaseDevice
	info    types.HttpNfcLeaseInfo // published as the "info" property once ready

	deadline time.Time   // the lease times out when this passes without a keep-alive
	timer    *time.Timer // fires at (or after) deadline
	// open is 1 while the device URLs serve (state ready); read without the lock by transfers.
	open int32
	// transferred counts bytes through all device URLs, for -abort-after-bytes.
	transferred int64
	// firstByte is when the lease's first NFC byte went through (UnixNano), for -nfc-rate.
	firstByte int64
	// conns holds the connections of transfers in flight, cut when the lease dies.
	conns map[net.Conn]int
}

// Reference shadows mo.HttpNfcLease's value-receiver Reference, which copies the whole struct:
// the simulator calls Reference() to find an object's lock before taking it, so that copy would
// race with a timer or transfer that holds the lock and changes the state. Self never changes.
func (l *nfcLease) Reference() types.ManagedObjectReference { return l.Self }

var (
	leases       sync.Map // id → *nfcLease, for the NFC and control handlers
	leaseCounter int64
)

func lookupLease(id string) *nfcLease {
	if l, ok := leases.Load(id); ok {
		return l.(*nfcLease)
	}
	return nil
}

// newLease creates a lease in state initializing, registers it, and schedules the move to ready.
// build makes the device list from the lease id (device URLs contain it). The info, with the
// device URLs, becomes visible only when the lease is ready, as on a real vCenter.
func newLease(kind leaseKind, entity types.ManagedObjectReference, build func(id string) []*leaseDevice) *nfcLease {
	id := fmt.Sprintf("lease-%d", atomic.AddInt64(&leaseCounter, 1))
	devices := build(id)
	l := &nfcLease{
		HttpNfcLease: mo.HttpNfcLease{
			Self:         types.ManagedObjectReference{Type: "HttpNfcLease", Value: id},
			State:        types.HttpNfcLeaseStateInitializing,
			Mode:         "pushOrGet",
			Capabilities: types.HttpNfcLeaseCapabilities{PullModeSupported: false, CorsSupported: false},
		},
		id:      id,
		kind:    kind,
		devices: devices,
		conns:   map[net.Conn]int{},
	}

	var capacityKB int64
	for _, d := range devices {
		d.url.SslThumbprint = cfg.deviceThumbprint
		capacityKB += (d.capacity + 1023) / 1024
	}
	l.info = types.HttpNfcLeaseInfo{
		Lease:                 l.Self,
		Entity:                entity,
		TotalDiskCapacityInKB: capacityKB,
		// The property is in whole seconds; a sub-second -lease-timeout is reported rounded up
		// but enforced exactly.
		LeaseTimeout: int32((cfg.leaseTimeout + time.Second - 1) / time.Second),
	}
	for _, d := range devices {
		l.info.DeviceUrl = append(l.info.DeviceUrl, d.url)
	}
	// The deadline counts from the end of initialization.
	l.deadline = time.Now().Add(cfg.leaseReadyDelay + cfg.leaseTimeout)

	simulator.Map.Put(l)
	leases.Store(id, l)

	simulator.Map.WithLock(l, func() {
		l.timer = time.AfterFunc(time.Until(l.deadline), l.checkDeadline)
	})
	time.AfterFunc(cfg.leaseReadyDelay, func() {
		simulator.Map.WithLock(l, func() {
			if l.State != types.HttpNfcLeaseStateInitializing {
				return // aborted while initializing
			}
			atomic.StoreInt32(&l.open, 1)
			simulator.Map.Update(l, []types.PropertyChange{
				{Name: "initializeProgress", Val: int32(100)},
				{Name: "info", Val: l.info},
				{Name: "state", Val: types.HttpNfcLeaseStateReady},
			})
		})
	})
	log.Printf("nfc: %s lease %s for %s with %d device(s)", kind, id, entity, len(devices))
	return l
}

// active reports whether the lease still accepts keep-alives (initializing or ready).
func (l *nfcLease) active() bool {
	return l.State == types.HttpNfcLeaseStateInitializing || l.State == types.HttpNfcLeaseStateReady
}

// renew pushes the deadline one -lease-timeout into the future. Caller holds the lock.
func (l *nfcLease) renew() {
	l.deadline = time.Now().Add(cfg.leaseTimeout)
}

// checkDeadline runs from the timer. A keep-alive may have moved the deadline after the timer
// was armed, so it re-arms itself rather than trusting that it fired at the right time.
func (l *nfcLease) checkDeadline() {
	simulator.Map.WithLock(l, func() {
		if !l.active() {
			return
		}
		if left := time.Until(l.deadline); left > 0 {
			l.timer = time.AfterFunc(left, l.checkDeadline)
			return
		}
		log.Printf("nfc: lease %s timed out", l.id)
		l.fail(&types.Timedout{}, "The operation timed out: no HttpNfcLeaseProgress within the lease timeout.", nil)
	})
}

// fail moves the lease to state error and cuts every transfer in flight, except keep (the
// caller's own connection, which ends by returning an error). Caller holds the lock.
func (l *nfcLease) fail(fault types.BaseMethodFault, msg string, keep net.Conn) {
	atomic.StoreInt32(&l.open, 0)
	if l.timer != nil {
		l.timer.Stop()
	}
	simulator.Map.Update(l, []types.PropertyChange{
		{Name: "error", Val: types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}},
		{Name: "state", Val: types.HttpNfcLeaseStateError},
	})
	for c := range l.conns {
		if c != keep {
			cutTransfer(c)
		}
	}
}

// finish moves the lease to state done. Caller holds the lock.
func (l *nfcLease) finish() {
	atomic.StoreInt32(&l.open, 0)
	if l.timer != nil {
		l.timer.Stop()
	}
	simulator.Map.Update(l, []types.PropertyChange{
		{Name: "transferProgress", Val: int32(100)},
		{Name: "state", Val: types.HttpNfcLeaseStateDone},
	})
}

// stateFault is the fault a keep-alive or completion gets when the lease is past its prime:
// the lease's own error (Timedout, RequestCanceled, ...) when it failed, InvalidState otherwise.
func (l *nfcLease) stateFault(method string) *soap.Fault {
	if l.State == types.HttpNfcLeaseStateError && l.Error != nil {
		return simulator.Fault(l.Error.LocalizedMessage, l.Error.Fault)
	}
	return simulator.Fault(fmt.Sprintf("%s: the lease is %s", method, l.State), &types.InvalidState{})
}

func (l *nfcLease) HttpNfcLeaseProgress(req *types.HttpNfcLeaseProgress) soap.HasFault {
	body := new(methods.HttpNfcLeaseProgressBody)
	if !l.active() {
		body.Fault_ = l.stateFault("HttpNfcLeaseProgress")
		return body
	}
	if req.Percent < 0 || req.Percent > 100 {
		body.Fault_ = simulator.Fault("percent must be within 0..100", &types.InvalidArgument{InvalidProperty: "percent"})
		return body
	}
	l.renew()
	simulator.Map.Update(l, []types.PropertyChange{{Name: "transferProgress", Val: req.Percent}})
	body.Res = new(types.HttpNfcLeaseProgressResponse)
	return body
}

func (l *nfcLease) HttpNfcLeaseComplete(req *types.HttpNfcLeaseComplete) soap.HasFault {
	body := new(methods.HttpNfcLeaseCompleteBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = l.stateFault("HttpNfcLeaseComplete")
		return body
	}
	l.finish()
	log.Printf("nfc: lease %s complete (%d bytes transferred)", l.id, atomic.LoadInt64(&l.transferred))
	body.Res = new(types.HttpNfcLeaseCompleteResponse)
	return body
}

func (l *nfcLease) HttpNfcLeaseAbort(req *types.HttpNfcLeaseAbort) soap.HasFault {
	body := new(methods.HttpNfcLeaseAbortBody)
	switch {
	case l.State == types.HttpNfcLeaseStateError:
		// Aborting a failed lease is harmless; clients do it on their error path.
	case l.active():
		var fault types.BaseMethodFault = &types.RequestCanceled{}
		msg := "The lease was aborted by the client."
		if req.Fault != nil && req.Fault.Fault != nil {
			fault = req.Fault.Fault
			if req.Fault.LocalizedMessage != "" {
				msg = req.Fault.LocalizedMessage
			}
		}
		log.Printf("nfc: lease %s aborted by the client", l.id)
		l.fail(fault, msg, nil)
	default:
		body.Fault_ = l.stateFault("HttpNfcLeaseAbort")
		return body
	}
	body.Res = new(types.HttpNfcLeaseAbortResponse)
	return body
}

// HttpNfcLeaseGetManifest returns one entry per device with the digests of the bytes behind it:
// the served disk file for exports, the received file for imports (devices with no upload yet
// are left out). sha1 is always filled (the field is mandatory in the schema); checksum carries
// the SHA-256 with checksumType "sha256". It also counts as a keep-alive.
func (l *nfcLease) HttpNfcLeaseGetManifest(req *types.HttpNfcLeaseGetManifest) soap.HasFault {
	body := new(methods.HttpNfcLeaseGetManifestBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = l.stateFault("HttpNfcLeaseGetManifest")
		return body
	}
	l.renew()
	entries := []types.HttpNfcLeaseManifestEntry{}
	for _, d := range l.devices {
		size, s1, s256, err := fileDigests(d.path)
		if err != nil {
			if os.IsNotExist(err) && l.kind == importLease {
				continue
			}
			body.Fault_ = simulator.Fault(err.Error(), &types.SystemError{Reason: err.Error()})
			return body
		}
		capacity := d.capacity
		if capacity == 0 {
			capacity = size
		}
		entries = append(entries, types.HttpNfcLeaseManifestEntry{
			Key:           d.url.Key,
			Sha1:          s1,
			Checksum:      s256,
			ChecksumType:  "sha256",
			Size:          size,
			Disk:          d.url.Disk != nil && *d.url.Disk,
			Capacity:      capacity,
			PopulatedSize: size,
		})
	}
	body.Res = &types.HttpNfcLeaseGetManifestResponse{Returnval: entries}
	return body
}

// device finds a device by the last element of its URL.
func (l *nfcLease) device(name string) *leaseDevice {
	for _, d := range l.devices {
		if d.name == name {
			return d
		}
	}
	return nil
}

// serverAbort is the test control: the server gives up on the lease as a failing host would.
func (l *nfcLease) serverAbort(reason string, keep net.Conn) bool {
	if !l.active() {
		return false
	}
	log.Printf("nfc: lease %s aborted by the server: %s", l.id, reason)
	l.fail(&types.SystemError{Reason: reason}, "The NFC transfer was aborted by the server: "+reason, keep)
	return true
}

// stopAllLeases stops the timers at shutdown so no callback runs while the process exits.
func stopAllLeases() {
	leases.Range(func(_, v interface{}) bool {
		l := v.(*nfcLease)
		simulator.Map.WithLock(l, func() {
			if l.timer != nil {
				l.timer.Stop()
			}
		})
		return true
	})
}

// leaseStatus is the JSON shape of GET /_test/lease/<id>.
type leaseStatus struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	State       string   `json:"state"`
	Error       string   `json:"error,omitempty"`
	Transferred int64    `json:"transferred"`
	Devices     []string `json:"devices"`
	Files       []string `json:"files"`
}

func (l *nfcLease) status() leaseStatus {
	s := leaseStatus{
		ID:          l.id,
		Kind:        string(l.kind),
		State:       string(l.State),
		Transferred: atomic.LoadInt64(&l.transferred),
		Devices:     []string{},
		Files:       []string{},
	}
	if l.Error != nil {
		s.Error = fmt.Sprintf("%T: %s", l.Error.Fault, l.Error.LocalizedMessage)
	}
	for _, d := range l.devices {
		s.Devices = append(s.Devices, d.url.Url)
		s.Files = append(s.Files, d.path)
	}
	return s
}
