// Command-line model of the simulator: global flags, then one --vm block per VM
// whose flags apply to the VM named last. Order matters, so the standard flag
// package (which has no notion of "the current VM") is not used.
package main

import (
	"fmt"
	"strconv"
	"strings"
)

type diskSpec struct {
	ctrlKind string // pvscsi, lsilogic, lsisas, buslogic, sata, ide, nvme
	bus      int32
	capacity int64
	thin     bool
	mode     string // persistent, independent_persistent, independent_nonpersistent
	rdm      string // "", physicalMode, virtualMode
	sharing  string // "", sharingMultiWriter
}

type nicSpec struct {
	network string
	model   string // vmxnet3, e1000e, e1000
}

type vmSpec struct {
	name           string
	disks          []diskSpec
	nics           []nicSpec
	firmware       string
	secureBoot     bool
	vtpm           bool
	guestID        string
	powerOn        bool
	cpus           int32
	coresPerSocket int32
	memoryMB       int64
	tools          bool
	folder         string
	shutdownDelay  int // seconds ShutdownGuest takes to power off; -1: the guest ignores it
}

type faultSpec struct {
	method string
	nth    int  // 1-based call number of this method
	from   bool // every call from nth on
	fault  string
	prop   string
}

type config struct {
	infoFile      string
	listen        string
	model         string
	user          string
	password      string
	maxAreas      int
	blockSize     int64
	faults        []faultSpec
	expireSeconds int
	expireCalls   int
	trace         bool
	certExpired   bool
	apiVersion    string // the vim25 version it speaks: 5.5 to 8.0
	noVersions    bool   // no /sdk/vimServiceVersions.xml (404)
	corrupt       []corruptSpec
	maxObjects    int
	vms           []*vmSpec
}

// corruptSpec breaks the Nth QueryChangedDiskAreas reply in one way, to
// prove that the client fails closed.
type corruptSpec struct {
	mode string // offset, zero, overlap, outside, past, unsorted
	nth  int
}

func newVM(name string) *vmSpec {
	return &vmSpec{name: name, guestID: "otherLinux64Guest", cpus: 2, coresPerSocket: 1,
		memoryMB: 2048, firmware: "bios", tools: true}
}

// parseSize accepts plain bytes or a K/M/G/T suffix (binary units).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	u := strings.ToUpper(s)
	switch {
	case strings.HasSuffix(u, "K"):
		mult = 1 << 10
	case strings.HasSuffix(u, "M"):
		mult = 1 << 20
	case strings.HasSuffix(u, "G"):
		mult = 1 << 30
	case strings.HasSuffix(u, "T"):
		mult = 1 << 40
	}
	if mult != 1 {
		u = u[:len(u)-1]
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// parseDisk reads CONTROLLER[BUS]:SIZE[:OPTION...].
func parseDisk(s string) (diskSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 {
		return diskSpec{}, fmt.Errorf("disk %q: want CONTROLLER:SIZE[:OPTIONS]", s)
	}
	d := diskSpec{thin: true, mode: "persistent"}
	ctrl := parts[0]
	i := len(ctrl)
	for i > 0 && ctrl[i-1] >= '0' && ctrl[i-1] <= '9' {
		i--
	}
	if i < len(ctrl) {
		b, _ := strconv.Atoi(ctrl[i:])
		d.bus = int32(b)
	}
	d.ctrlKind = ctrl[:i]
	switch d.ctrlKind {
	case "scsi":
		d.ctrlKind = "pvscsi"
	case "pvscsi", "lsilogic", "lsisas", "buslogic", "sata", "nvme":
	case "ide":
		if d.bus > 1 {
			return d, fmt.Errorf("disk %q: ide has buses 0 and 1", s)
		}
	default:
		return d, fmt.Errorf("disk %q: unknown controller %q", s, d.ctrlKind)
	}
	if d.bus > 3 {
		return d, fmt.Errorf("disk %q: bus %d out of range 0-3", s, d.bus)
	}
	size, err := parseSize(parts[1])
	if err != nil {
		return d, fmt.Errorf("disk %q: %v", s, err)
	}
	d.capacity = size
	for _, opt := range parts[2:] {
		switch opt {
		case "thin":
			d.thin = true
		case "thick":
			d.thin = false
		case "persistent", "independent_persistent", "independent_nonpersistent",
			"nonpersistent", "undoable", "append":
			d.mode = opt
		case "rdm-physical":
			d.rdm = "physicalMode"
		case "rdm-virtual":
			d.rdm = "virtualMode"
		case "multiwriter":
			d.sharing = "sharingMultiWriter"
		default:
			return d, fmt.Errorf("disk %q: unknown option %q", s, opt)
		}
	}
	return d, nil
}

func parseFault(s string) (faultSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 {
		return faultSpec{}, fmt.Errorf("fault %q: want METHOD:N[+]:FAULT[:PROPERTY]", s)
	}
	f := faultSpec{method: parts[0], fault: parts[2]}
	n := parts[1]
	if strings.HasSuffix(n, "+") {
		f.from = true
		n = n[:len(n)-1]
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 1 {
		return f, fmt.Errorf("fault %q: bad call number %q", s, parts[1])
	}
	f.nth = v
	if len(parts) == 4 {
		f.prop = parts[3]
	}
	return f, nil
}

func parseArgs(args []string) (*config, error) {
	c := &config{listen: "127.0.0.1:0", model: "vpx", maxAreas: 2000, blockSize: 64 << 10,
		apiVersion: "8.0"}
	var cur *vmSpec
	needVM := func(flag string) (*vmSpec, error) {
		if cur == nil {
			return nil, fmt.Errorf("%s must follow --vm NAME", flag)
		}
		return cur, nil
	}
	for i := 0; i < len(args); i++ {
		flag := args[i]
		val := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", flag)
			}
			i++
			return args[i], nil
		}
		intVal := func() (int, error) {
			v, err := val()
			if err != nil {
				return 0, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%s: bad number %q", flag, v)
			}
			return n, nil
		}
		var err error
		var s string
		var n int
		switch flag {
		case "--info":
			c.infoFile, err = val()
		case "--listen":
			c.listen, err = val()
		case "--model":
			c.model, err = val()
			if err == nil && c.model != "vpx" && c.model != "esx" {
				err = fmt.Errorf("--model: vpx or esx")
			}
		case "--user":
			c.user, err = val()
		case "--password":
			c.password, err = val()
		case "--max-areas":
			c.maxAreas, err = intVal()
			if err == nil && c.maxAreas < 1 {
				err = fmt.Errorf("--max-areas must be at least 1")
			}
		case "--cbt-block-size":
			n, err = intVal()
			c.blockSize = int64(n)
			if err == nil && (n < 512 || n%512 != 0) {
				err = fmt.Errorf("--cbt-block-size must be a multiple of 512")
			}
		case "--fault":
			if s, err = val(); err == nil {
				var f faultSpec
				f, err = parseFault(s)
				c.faults = append(c.faults, f)
			}
		case "--expire-session-seconds":
			c.expireSeconds, err = intVal()
		case "--expire-session-calls":
			c.expireCalls, err = intVal()
		case "--corrupt-areas":
			if s, err = val(); err == nil {
				parts := strings.Split(s, ":")
				n := 0
				if len(parts) == 2 {
					n, _ = strconv.Atoi(parts[1])
				}
				switch {
				case len(parts) != 2 || n < 1:
					err = fmt.Errorf("--corrupt-areas %q: want MODE:N", s)
				case parts[0] == "offset", parts[0] == "zero", parts[0] == "overlap",
					parts[0] == "outside", parts[0] == "past", parts[0] == "unsorted":
					c.corrupt = append(c.corrupt, corruptSpec{parts[0], n})
				default:
					err = fmt.Errorf("--corrupt-areas: unknown mode %q", parts[0])
				}
			}
		case "--max-objects":
			c.maxObjects, err = intVal()
		case "--trace":
			c.trace = true
		case "--cert-expired":
			c.certExpired = true
		case "--no-service-versions":
			c.noVersions = true
		case "--api-version":
			if c.apiVersion, err = val(); err == nil && apiVersions[c.apiVersion] == nil {
				err = fmt.Errorf("--api-version: one of 5.5, 6.0, 6.5, 6.7, 7.0, 8.0")
			}
		case "--vm":
			if s, err = val(); err == nil {
				cur = newVM(s)
				c.vms = append(c.vms, cur)
			}
		case "--disk", "--nic", "--firmware", "--guest-id", "--power", "--cpus",
			"--cores-per-socket", "--memory", "--folder", "--shutdown-delay":
			var vm *vmSpec
			if vm, err = needVM(flag); err != nil {
				break
			}
			if s, err = val(); err != nil {
				break
			}
			err = vm.set(flag, s)
		case "--secure-boot", "--vtpm", "--no-tools":
			var vm *vmSpec
			if vm, err = needVM(flag); err == nil {
				switch flag {
				case "--secure-boot":
					vm.secureBoot = true
				case "--vtpm":
					vm.vtpm = true
				default:
					vm.tools = false
				}
			}
		default:
			err = fmt.Errorf("unknown flag %q (see tests/sim/README.md)", flag)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.infoFile == "" {
		return nil, fmt.Errorf("--info FILE is required")
	}
	if len(c.vms) == 0 {
		vm := newVM("vm0")
		vm.disks = []diskSpec{{ctrlKind: "pvscsi", capacity: 64 << 20, thin: true, mode: "persistent"}}
		vm.nics = []nicSpec{{network: "VM Network", model: "vmxnet3"}}
		c.vms = append(c.vms, vm)
	}
	for _, vm := range c.vms {
		if vm.secureBoot && vm.firmware != "efi" {
			return nil, fmt.Errorf("vm %s: --secure-boot needs --firmware efi", vm.name)
		}
	}
	return c, nil
}

func (vm *vmSpec) set(flag, s string) error {
	num := func() (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s: bad number %q", flag, s)
		}
		return n, nil
	}
	switch flag {
	case "--disk":
		d, err := parseDisk(s)
		if err != nil {
			return err
		}
		vm.disks = append(vm.disks, d)
	case "--nic":
		n := nicSpec{network: s, model: "vmxnet3"}
		if i := strings.LastIndex(s, ":"); i >= 0 {
			switch s[i+1:] {
			case "vmxnet3", "e1000e", "e1000", "vmxnet2", "pcnet32":
				n.network, n.model = s[:i], s[i+1:]
			}
		}
		vm.nics = append(vm.nics, n)
	case "--firmware":
		if s != "bios" && s != "efi" {
			return fmt.Errorf("--firmware: bios or efi")
		}
		vm.firmware = s
	case "--guest-id":
		vm.guestID = s
	case "--folder":
		vm.folder = s
	case "--shutdown-delay":
		if s == "never" {
			vm.shutdownDelay = -1
			break
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("--shutdown-delay: seconds or never")
		}
		vm.shutdownDelay = n
	case "--power":
		if s != "on" && s != "off" {
			return fmt.Errorf("--power: on or off")
		}
		vm.powerOn = s == "on"
	case "--cpus":
		n, err := num()
		vm.cpus = int32(n)
		return err
	case "--cores-per-socket":
		n, err := num()
		vm.coresPerSocket = int32(n)
		return err
	case "--memory":
		n, err := num()
		vm.memoryMB = n
		return err
	}
	return nil
}

// apiVersions: what each simulated release reports (about.version, fullName)
// and the older versions it also speaks, as its vimServiceVersions.xml lists.
var apiVersions = map[string]*apiRelease{
	"5.5": {"5.5.0", []string{"5.1", "5.0", "4.1", "4.0"}},
	"6.0": {"6.0.0", []string{"5.5", "5.1", "5.0", "4.1", "4.0"}},
	"6.5": {"6.5.0", []string{"6.0", "5.5", "5.1", "5.0"}},
	"6.7": {"6.7.0", []string{"6.5", "6.0", "5.5", "5.1", "5.0"}},
	"7.0": {"7.0.0", []string{"6.7.3", "6.7", "6.5", "6.0", "5.5"}},
	"8.0": {"8.0.0", []string{"7.0.3.0", "7.0", "6.7.3", "6.7", "6.5", "6.0", "5.5"}},
}

type apiRelease struct {
	version string
	prior   []string
}

// versionNewer tells whether dotted version a is newer than b.
func versionNewer(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}
