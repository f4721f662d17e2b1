// Inventory: VMs built through the simulator's own API, each disk then given a
// real VMFS-style descriptor and a sparse flat file holding its data.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

type diskInfo struct {
	Key        int32  `json:"key"`
	FileName   string `json:"file_name"`
	Descriptor string `json:"descriptor"`
	Flat       string `json:"flat"`
	Capacity   int64  `json:"capacity"`
	Controller string `json:"controller"`
	Unit       int32  `json:"unit"`
	Bus        int32  `json:"bus"`
}

type nicInfo struct {
	Key     int32  `json:"key"`
	MAC     string `json:"mac"`
	Network string `json:"network"`
	Model   string `json:"model"`
}

type vmInfo struct {
	Name  string     `json:"name"`
	Moref string     `json:"moref"`
	Path  string     `json:"path"`
	UUID  string     `json:"instance_uuid"`
	Disks []diskInfo `json:"disks"`
	NICs  []nicInfo  `json:"nics"`
}

// Stable device keys, the same ranges vSphere uses.
const (
	keySCSI = 1000
	keyDisk = 2000
	keyNIC  = 4000
	keyTPM  = 11000
	keySATA = 15000
	keyNVME = 31000
	keyIDE  = 200
)

func controllerDevice(kind string, bus int32) (types.BaseVirtualDevice, int32) {
	switch kind {
	case "sata":
		key := keySATA + bus
		c := &types.VirtualAHCIController{}
		c.Key, c.BusNumber = key, bus
		return c, key
	case "nvme":
		key := keyNVME + bus
		c := &types.VirtualNVMEController{}
		c.Key, c.BusNumber = key, bus
		return c, key
	case "ide":
		return nil, keyIDE + bus // the default IDE controllers already exist
	}
	key := keySCSI + bus
	base := types.VirtualSCSIController{SharedBus: types.VirtualSCSISharingNoSharing, ScsiCtlrUnitNumber: 7}
	base.Key, base.BusNumber = key, bus
	switch kind {
	case "lsilogic":
		return &types.VirtualLsiLogicController{VirtualSCSIController: base}, key
	case "lsisas":
		return &types.VirtualLsiLogicSASController{VirtualSCSIController: base}, key
	case "buslogic":
		return &types.VirtualBusLogicController{VirtualSCSIController: base}, key
	}
	return &types.ParaVirtualSCSIController{VirtualSCSIController: base}, key
}

func nicDevice(n nicSpec, key int32, mac string) types.BaseVirtualDevice {
	card := types.VirtualEthernetCard{
		AddressType: string(types.VirtualEthernetCardMacTypeManual),
		MacAddress:  mac,
	}
	card.Key = key
	card.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.network},
	}
	card.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, Connected: true}
	switch n.model {
	case "e1000e":
		return &types.VirtualE1000e{VirtualEthernetCard: card}
	case "e1000":
		return &types.VirtualE1000{VirtualEthernetCard: card}
	case "vmxnet2":
		return &types.VirtualVmxnet2{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: card}}
	case "pcnet32":
		return &types.VirtualPCNet32{VirtualEthernetCard: card}
	}
	return &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: card}}
}

// fileName is the name a VM's files get. vSphere escapes '/' and quotes in
// shortens long ones; the simulator would fail on them, so such VMs get a
// plain file name and their real name after creation (see renameVM).
func fileName(vmIndex int, name string) string {
	if strings.ContainsAny(name, "/\\%\"") || len(name) > 80 {
		return fmt.Sprintf("vm-%d", vmIndex)
	}
	return name
}

// renameVM gives the VM its display name, which may hold anything.
func renameVM(vm *simulator.VirtualMachine, name string) {
	simulator.Map.WithLock(vm, func() {
		vm.Name = name
		vm.Config.Name = name
		vm.Summary.Config.Name = name
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "name", Val: name}, {Name: "config.name", Val: name}, {Name: "summary.config.name", Val: name},
		})
	})
}

// buildSpec turns a vmSpec into a CreateVM_Task spec with fixed keys.
func buildSpec(vmIndex int, vm *vmSpec, dsName string) types.VirtualMachineConfigSpec {
	spec := types.VirtualMachineConfigSpec{
		Name:              fileName(vmIndex, vm.name),
		GuestId:           vm.guestID,
		NumCPUs:           vm.cpus,
		NumCoresPerSocket: vm.coresPerSocket,
		MemoryMB:          vm.memoryMB,
		Firmware:          vm.firmware,
		Files:             &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", dsName)},
	}
	if vm.firmware == "efi" {
		spec.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: types.NewBool(vm.secureBoot)}
	}
	add := func(d types.BaseVirtualDevice, op types.VirtualDeviceConfigSpecFileOperation) {
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, FileOperation: op, Device: d})
	}
	made := map[int32]bool{}
	units := map[int32]int32{}
	for i, d := range vm.disks {
		ctrl, ckey := controllerDevice(d.ctrlKind, d.bus)
		if ctrl != nil && !made[ckey] {
			add(ctrl, "")
			made[ckey] = true
		}
		unit := units[ckey]
		if d.ctrlKind != "sata" && d.ctrlKind != "nvme" && d.ctrlKind != "ide" && unit == 7 {
			unit++ // SCSI unit 7 is the controller itself
		}
		units[ckey] = unit + 1
		disk := &types.VirtualDisk{CapacityInKB: (d.capacity + 1023) / 1024, CapacityInBytes: d.capacity}
		disk.Key = keyDisk + int32(i)
		disk.DeviceInfo = &types.Description{Label: fmt.Sprintf("Hard disk %d", i+1)}
		disk.ControllerKey = ckey
		disk.UnitNumber = types.NewInt32(unit)
		file := types.VirtualDeviceFileBackingInfo{FileName: fmt.Sprintf("[%s]", dsName)}
		// RDMs start as flat disks: the simulator assumes flat backings while
		// it creates a VM. buildInventory swaps in the RDM backing afterwards.
		disk.Backing = &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: file, DiskMode: d.mode,
			ThinProvisioned: types.NewBool(d.thin), EagerlyScrub: types.NewBool(false),
			Sharing: d.sharing,
			Uuid:    fmt.Sprintf("6000C29%d-%04x-%04x-%04x-%012x", vmIndex%10, vmIndex, i, 0x5a5a, vmIndex*100+i)}
		add(disk, types.VirtualDeviceConfigSpecFileOperationCreate)
	}
	for i, n := range vm.nics {
		mac := fmt.Sprintf("00:50:56:%02x:%02x:%02x", 0x10+vmIndex%0x30, (i>>8)&0xff, i&0xff)
		nic := nicDevice(n, keyNIC+int32(i), mac)
		nic.GetVirtualDevice().DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", i+1)}
		add(nic, "")
	}
	if vm.vtpm {
		tpm := &types.VirtualTPM{}
		tpm.Key = keyTPM
		add(tpm, "")
	}
	return spec
}

// datastorePathToFile maps "[ds] dir/file.vmdk" onto the datastore directory.
func datastorePathToFile(dsDirs map[string]string, p string) (string, error) {
	var dp object.DatastorePath
	if !dp.FromString(p) {
		return "", fmt.Errorf("bad datastore path %q", p)
	}
	dir, ok := dsDirs[dp.Datastore]
	if !ok {
		return "", fmt.Errorf("unknown datastore %q", dp.Datastore)
	}
	return filepath.Join(dir, dp.Path), nil
}

func writeDescriptor(path, flatBase string, capacity int64, thin bool) error {
	sectors := (capacity + 511) / 512
	thinFlag := "0"
	if thin {
		thinFlag = "1"
	}
	text := fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW %d VMFS "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.thinProvisioned = "%s"
ddb.virtualHWVersion = "14"
`, sectors, flatBase, thinFlag)
	return os.WriteFile(path, []byte(text), 0644)
}

// materializeDisk replaces the simulator's empty vmdk with a descriptor and a
// flat file of the disk's capacity: sparse when thin, fully allocated when thick.
func materializeDisk(descriptor string, capacity int64, thin bool) (string, error) {
	base := strings.TrimSuffix(filepath.Base(descriptor), ".vmdk") + "-flat.vmdk"
	flat := filepath.Join(filepath.Dir(descriptor), base)
	f, err := os.OpenFile(flat, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if thin {
		err = f.Truncate(capacity)
	} else {
		err = syscall.Fallocate(int(f.Fd()), 0, 0, capacity)
	}
	if err != nil {
		return "", err
	}
	return flat, writeDescriptor(descriptor, base, capacity, thin)
}

type inventory struct {
	dsDirs   map[string]string
	dsName   string
	hostRef  types.ManagedObjectReference
	vms      []vmInfo
	flatByVM map[string]map[int32]string // moref -> disk key -> flat file
	thick    map[string]bool             // flat file -> thick provisioned
	specs    map[string]*vmSpec          // moref -> the flags it was made from
}

func ensureNetworks(ctx context.Context, c *vim25.Client, host *object.HostSystem, specs []*vmSpec) error {
	ns, err := host.ConfigManager().NetworkSystem(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{"VM Network": true}
	for _, vm := range specs {
		for _, n := range vm.nics {
			if seen[n.network] {
				continue
			}
			seen[n.network] = true
			err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: n.network, VswitchName: "vSwitch0",
				Policy: types.HostNetworkPolicy{}})
			if err != nil {
				return fmt.Errorf("network %q: %v", n.network, err)
			}
		}
	}
	return nil
}

func ensureFolder(ctx context.Context, finder *find.Finder, parent *object.Folder, name string) (*object.Folder, error) {
	if f, err := finder.Folder(ctx, parent.InventoryPath+"/"+name); err == nil {
		return f, nil
	}
	return parent.CreateFolder(ctx, name)
}

func buildInventory(ctx context.Context, c *vim25.Client, specs []*vmSpec) (*inventory, error) {
	finder := find.NewFinder(c, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return nil, err
	}
	finder.SetDatacenter(dc)
	host, err := finder.DefaultHostSystem(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := host.ResourcePool(ctx)
	if err != nil {
		return nil, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	inv := &inventory{dsDirs: map[string]string{}, hostRef: host.Reference(),
		flatByVM: map[string]map[int32]string{}, thick: map[string]bool{}, specs: map[string]*vmSpec{}}
	for _, ref := range simulator.Map.All("Datastore") {
		ds := ref.(*simulator.Datastore)
		inv.dsDirs[ds.Name] = ds.Info.GetDatastoreInfo().Url
		if inv.dsName == "" {
			inv.dsName = ds.Name
		}
	}
	if err := ensureNetworks(ctx, c, host, specs); err != nil {
		return nil, err
	}
	for i, vs := range specs {
		spec := buildSpec(i, vs, inv.dsName)
		folder := folders.VmFolder
		folderPath := "vm"
		if vs.folder != "" {
			if folder, err = ensureFolder(ctx, finder, folders.VmFolder, vs.folder); err != nil {
				return nil, fmt.Errorf("vm %s: folder %s: %v", vs.name, vs.folder, err)
			}
			folderPath = "vm/" + vs.folder
		}
		task, err := folder.CreateVM(ctx, spec, pool, host)
		if err != nil {
			return nil, fmt.Errorf("vm %s: %v", vs.name, err)
		}
		res, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("vm %s: %v", vs.name, err)
		}
		ref := res.Result.(types.ManagedObjectReference)
		vmObj := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		if spec.Name != vs.name {
			renameVM(vmObj, vs.name)
		}
		info := vmInfo{Name: vs.name, Moref: ref.Value, UUID: vmObj.Config.InstanceUuid,
			Path: strings.TrimPrefix(dc.InventoryPath+"/"+folderPath+"/"+vs.name, "/")}
		flats := map[int32]string{}
		for di, dev := range vmObj.Config.Hardware.Device {
			_ = di
			switch d := dev.(type) {
			case *types.VirtualDisk:
				fb := d.Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo()
				descriptor, err := datastorePathToFile(inv.dsDirs, fb.FileName)
				if err != nil {
					return nil, err
				}
				ds := vs.disks[d.Key-keyDisk]
				flat := ""
				if ds.rdm != "" {
					simulator.Map.WithLock(vmObj, func() {
						d.Backing = &types.VirtualDiskRawDiskMappingVer1BackingInfo{
							VirtualDeviceFileBackingInfo: *fb, CompatibilityMode: ds.rdm, DiskMode: ds.mode,
							DeviceName: fmt.Sprintf("/vmfs/devices/disks/naa.6000c29%013d", int(d.Key)),
							LunUuid:    fmt.Sprintf("0200%04d0000600000000000000000000000000000", d.Key)}
					})
				} else {
					if flat, err = materializeDisk(descriptor, ds.capacity, ds.thin); err != nil {
						return nil, err
					}
					flats[d.Key] = flat
					inv.thick[flat] = !ds.thin
				}
				info.Disks = append(info.Disks, diskInfo{Key: d.Key, FileName: fb.FileName,
					Descriptor: descriptor, Flat: flat, Capacity: ds.capacity,
					Controller: ds.ctrlKind, Bus: ds.bus, Unit: *d.UnitNumber})
			case types.BaseVirtualEthernetCard:
				card := d.GetVirtualEthernetCard()
				n := vs.nics[card.Key-keyNIC]
				info.NICs = append(info.NICs, nicInfo{Key: card.Key, MAC: card.MacAddress,
					Network: n.network, Model: n.model})
			}
		}
		inv.flatByVM[ref.Value] = flats
		inv.specs[ref.Value] = vs
		simulator.Map.WithLock(vmObj, func() {
			if vs.tools {
				vmObj.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
				vmObj.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
			} else {
				vmObj.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsNotInstalled
			}
		})
		if vs.powerOn {
			vm := object.NewVirtualMachine(c, ref)
			task, err := vm.PowerOn(ctx)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				return nil, fmt.Errorf("vm %s power on: %v", vs.name, err)
			}
			if vs.tools {
				simulator.Map.WithLock(vmObj, func() {
					vmObj.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
				})
			}
		}
		inv.vms = append(inv.vms, info)
	}
	return inv, nil
}
