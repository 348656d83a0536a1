package main

// OvfManager.CreateDescriptor: an OVF 1.x envelope for a VM (VirtualSystem) or a vApp
// (VirtualSystemCollection of VirtualSystems), written by hand.
//
// The descriptor is meant to be realistic where clients and CreateImportSpec look: References
// holds one File per ovfFiles entry whose deviceId matches a disk's lease key; DiskSection gives
// every disk with its capacity in bytes; NetworkSection lists the networks the NICs are on; the
// VirtualHardwareSection lists CPU, memory, controllers, disks, CD-ROMs and NICs with the
// InstanceID/Parent links CreateImportSpec follows.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// descriptorState accumulates what the envelope-level sections need while the virtual systems
// are written: files and disks are numbered across the whole envelope.
type descriptorState struct {
	files    strings.Builder
	disks    strings.Builder
	networks map[string]bool
	nfile    int
	ndisk    int
	used     map[string]bool // ovfFiles deviceIds that matched a disk
	ovfFiles map[string]types.OvfFile
}

var scsiSubtypes = map[string]string{
	"pvscsi":       "VirtualSCSI",
	"lsilogic":     "lsilogic",
	"lsilogic-sas": "lsilogicsas",
	"buslogic":     "buslogic",
}

var nicSubtypes = map[string]string{
	"VirtualE1000":   "E1000",
	"VirtualE1000e":  "E1000e",
	"VirtualVmxnet3": "VmxNet3",
	"VirtualVmxnet2": "VmxNet2",
	"VirtualVmxnet":  "VmxNet",
	"VirtualPCNet32": "PCNet32",
}

func createDescriptor(obj types.ManagedObjectReference, cdp types.OvfCreateDescriptorParams) (*types.OvfCreateDescriptorResult, *soap.Fault) {
	st := &descriptorState{networks: map[string]bool{}, used: map[string]bool{}, ovfFiles: map[string]types.OvfFile{}}
	for _, f := range cdp.OvfFiles {
		st.ovfFiles[f.DeviceId] = f
	}

	var systems strings.Builder
	switch entity := simulator.Map.Get(obj).(type) {
	case *simulator.VirtualMachine:
		var err error
		simulator.Map.WithLock(entity, func() {
			name := entity.Name
			if cdp.Name != "" {
				name = cdp.Name
			}
			err = st.virtualSystem(&systems, entity, name, cdp.Description)
		})
		if err != nil {
			return nil, simulator.Fault(err.Error(), &types.SystemError{Reason: err.Error()})
		}
	case *simulator.VirtualApp:
		name := entity.Name
		if cdp.Name != "" {
			name = cdp.Name
		}
		var vms []types.ManagedObjectReference
		simulator.Map.WithLock(entity, func() { vms = append(vms, entity.Vm...) })
		fmt.Fprintf(&systems, "  <VirtualSystemCollection ovf:id=\"%s\">\n    <Info>A vApp</Info>\n    <Name>%s</Name>\n", esc(name), esc(name))
		if cdp.Description != "" {
			fmt.Fprintf(&systems, "    <AnnotationSection>\n      <Info>A human-readable annotation</Info>\n      <Annotation>%s</Annotation>\n    </AnnotationSection>\n", esc(cdp.Description))
		}
		for _, ref := range vms {
			vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
			if !ok {
				continue
			}
			var err error
			simulator.Map.WithLock(vm, func() { err = st.virtualSystem(&systems, vm, vm.Name, "") })
			if err != nil {
				return nil, simulator.Fault(err.Error(), &types.SystemError{Reason: err.Error()})
			}
		}
		systems.WriteString("  </VirtualSystemCollection>\n")
	case nil:
		return nil, notFound(obj)
	default:
		return nil, simulator.Fault(fmt.Sprintf("CreateDescriptor supports VirtualMachine and VirtualApp, not %s", obj.Type),
			&types.InvalidArgument{InvalidProperty: "obj"})
	}

	result := &types.OvfCreateDescriptorResult{IncludeImageFiles: types.NewBool(false)}
	var unmatched []string
	for id := range st.ovfFiles {
		if !st.used[id] {
			unmatched = append(unmatched, id)
		}
	}
	sort.Strings(unmatched)
	for _, id := range unmatched {
		result.Warning = append(result.Warning, types.LocalizedMethodFault{
			Fault:            &types.InvalidArgument{InvalidProperty: "cdp.ovfFiles"},
			LocalizedMessage: fmt.Sprintf("ovfFiles entry %q matches no disk of %s; it is left out", id, obj.Value),
		})
	}

	var networks []string
	for n := range st.networks {
		networks = append(networks, n)
	}
	sort.Strings(networks)

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
`)
	b.WriteString(st.files.String())
	b.WriteString("  </References>\n  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	b.WriteString(st.disks.String())
	b.WriteString("  </DiskSection>\n  <NetworkSection>\n    <Info>The list of logical networks</Info>\n")
	for _, n := range networks {
		fmt.Fprintf(&b, "    <Network ovf:name=\"%s\">\n      <Description>The %s network</Description>\n    </Network>\n", esc(n), esc(n))
	}
	b.WriteString("  </NetworkSection>\n")
	b.WriteString(systems.String())
	b.WriteString("</Envelope>\n")
	result.OvfDescriptor = b.String()
	return result, nil
}

// networkName names the network behind a NIC backing; the caller holds the VM's lock.
func networkName(backing types.BaseVirtualDeviceBackingInfo) string {
	switch b := backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.DeviceName != "" {
			return b.DeviceName
		}
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		if pg, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup); ok {
			return pg.Name
		}
	}
	return "VM Network"
}

// virtualSystem writes one <VirtualSystem>; the caller holds the VM's lock.
func (st *descriptorState) virtualSystem(w *strings.Builder, vm *simulator.VirtualMachine, name, description string) error {
	disks, err := vmDisks(vm)
	if err != nil {
		return err
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	guest := vm.Config.GuestId
	if guest == "" {
		guest = string(types.VirtualMachineGuestOsIdentifierOtherGuest)
	}
	version := vm.Config.Version
	if version == "" {
		version = "vmx-13"
	}
	cpus := vm.Config.Hardware.NumCPU
	if cpus < 1 {
		cpus = 1
	}
	memory := vm.Config.Hardware.MemoryMB
	if memory < 1 {
		memory = 32
	}

	fmt.Fprintf(w, "  <VirtualSystem ovf:id=\"%s\">\n    <Info>A virtual machine</Info>\n    <Name>%s</Name>\n", esc(name), esc(name))
	if description != "" {
		fmt.Fprintf(w, "    <AnnotationSection>\n      <Info>A human-readable annotation</Info>\n      <Annotation>%s</Annotation>\n    </AnnotationSection>\n", esc(description))
	}
	fmt.Fprintf(w, "    <OperatingSystemSection ovf:id=\"1\" vmw:osType=\"%s\">\n      <Info>The kind of installed guest operating system</Info>\n    </OperatingSystemSection>\n", esc(guest))
	fmt.Fprintf(w, `    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>
      </System>
`, esc(name), esc(version))

	// item writes one rasd Item from name/value pairs given in the CIM schema's (alphabetical)
	// element order, inserting InstanceID where it belongs, and returns that InstanceID.
	instance := 0
	item := func(fields ...string) int {
		instance++
		w.WriteString("      <Item>\n")
		wroteID := false
		writeID := func() {
			fmt.Fprintf(w, "        <rasd:InstanceID>%d</rasd:InstanceID>\n", instance)
			wroteID = true
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if !wroteID && fields[i] > "InstanceID" {
				writeID()
			}
			fmt.Fprintf(w, "        <rasd:%s>%s</rasd:%s>\n", fields[i], esc(fields[i+1]), fields[i])
		}
		if !wroteID {
			writeID()
		}
		w.WriteString("      </Item>\n")
		return instance
	}

	item("AllocationUnits", "hertz * 10^6", "Description", "Number of Virtual CPUs",
		"ElementName", fmt.Sprintf("%d virtual CPU(s)", cpus), "ResourceType", "3", "VirtualQuantity", fmt.Sprint(cpus))
	item("AllocationUnits", "byte * 2^20", "Description", "Memory Size",
		"ElementName", fmt.Sprintf("%dMB of memory", memory), "ResourceType", "4", "VirtualQuantity", fmt.Sprint(memory))

	// Controllers first: disks and CD-ROMs refer to them by InstanceID.
	controllers := map[int32]int{} // device key → InstanceID
	for _, d := range devices {
		switch c := d.(type) {
		case types.BaseVirtualSCSIController:
			sc := c.GetVirtualSCSIController()
			subtype, ok := scsiSubtypes[devices.Type(d)]
			if !ok {
				continue
			}
			controllers[sc.Key] = item("Address", fmt.Sprint(sc.BusNumber), "Description", "SCSI Controller",
				"ElementName", fmt.Sprintf("SCSI controller %d", sc.BusNumber), "ResourceSubType", subtype, "ResourceType", "6")
		case *types.VirtualIDEController:
			controllers[c.Key] = item("Address", fmt.Sprint(c.BusNumber), "Description", "IDE Controller",
				"ElementName", fmt.Sprintf("IDE %d", c.BusNumber), "ResourceSubType", "PIIX4", "ResourceType", "5")
		}
	}

	for _, d := range disks {
		parent, ok := controllers[d.device.ControllerKey]
		if !ok {
			continue
		}
		st.ndisk++
		diskID := fmt.Sprintf("vmdisk%d", st.ndisk)
		fileRef := ""
		populated := ""
		if f, ok := st.ovfFiles[diskDeviceKey(vm.Self, d.index)]; ok {
			st.used[f.DeviceId] = true
			st.nfile++
			fileRef = fmt.Sprintf("file%d", st.nfile)
			fmt.Fprintf(&st.files, "    <File ovf:href=\"%s\" ovf:id=\"%s\" ovf:size=\"%d\"/>\n", esc(f.Path), fileRef, f.Size)
			if f.PopulatedSize > 0 {
				populated = fmt.Sprintf(" ovf:populatedSize=\"%d\"", f.PopulatedSize)
			}
		}
		fmt.Fprintf(&st.disks, "    <Disk ovf:capacity=\"%d\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"%s\"", d.capacity, diskID)
		if fileRef != "" {
			fmt.Fprintf(&st.disks, " ovf:fileRef=\"%s\"", fileRef)
		}
		fmt.Fprintf(&st.disks, " ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"%s/>\n", populated)

		unit := int32(0)
		if d.device.UnitNumber != nil {
			unit = *d.device.UnitNumber
		}
		item("AddressOnParent", fmt.Sprint(unit), "ElementName", fmt.Sprintf("Hard disk %d", d.index+1),
			"HostResource", "ovf:/disk/"+diskID, "Parent", fmt.Sprint(parent), "ResourceType", "17")
	}

	ncd := 0
	for _, d := range devices {
		cd, ok := d.(*types.VirtualCdrom)
		if !ok {
			continue
		}
		parent, ok := controllers[cd.ControllerKey]
		if !ok {
			continue
		}
		if _, ide := devices.FindByKey(cd.ControllerKey).(*types.VirtualIDEController); !ide {
			continue // CreateImportSpec only attaches CD-ROMs to IDE controllers
		}
		ncd++
		unit := int32(0)
		if cd.UnitNumber != nil {
			unit = *cd.UnitNumber
		}
		item("AddressOnParent", fmt.Sprint(unit), "AutomaticAllocation", "false", "ElementName", fmt.Sprintf("CD/DVD drive %d", ncd),
			"Parent", fmt.Sprint(parent), "ResourceSubType", "vmware.cdrom.remotepassthrough", "ResourceType", "15")
	}

	nnic := 0
	for _, d := range devices {
		nic, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		card := nic.GetVirtualEthernetCard()
		network := networkName(card.Backing)
		st.networks[network] = true
		subtype, ok := nicSubtypes[devices.TypeName(d)]
		if !ok {
			subtype = "E1000"
		}
		unit := int32(7 + nnic)
		if card.UnitNumber != nil {
			unit = *card.UnitNumber
		}
		nnic++
		item("AddressOnParent", fmt.Sprint(unit), "AutomaticAllocation", "true", "Connection", network,
			"Description", fmt.Sprintf("%s ethernet adapter on \"%s\"", subtype, network),
			"ElementName", fmt.Sprintf("Network adapter %d", nnic), "ResourceSubType", subtype, "ResourceType", "10")
	}

	w.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n")
	return nil
}
