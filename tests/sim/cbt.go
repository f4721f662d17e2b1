// Changed Block Tracking modelled on disk content.
//
// At every snapshot the simulator records, per disk, a digest of every block
// and whether the block is allocated, and freezes the disk's data into a
// sparse copy that becomes the snapshot's backing. QueryChangedDiskAreas then
// compares two records; nothing is answered from lists that tests wrote.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

type blockDigest [16]byte

// record is one disk as it was at one point in time.
type record struct {
	capacity  int64
	digests   []blockDigest
	allocated []bool
}

type diskTrack struct {
	epoch   string // the UUID half of the changeId
	seq     int    // the sequence number of the live disk's changeId
	records map[int]*record
}

type snapshotDisk struct {
	changeID         string
	rec              *record
	frozen           string // flat file holding the snapshot's data, "" if none
	frozenDescriptor string
}

type cbtState struct {
	mu        sync.Mutex
	blockSize int64
	// vm moref -> disk key -> tracking; absent while CBT is off
	tracks map[string]map[int32]*diskTrack
	// snapshot moref -> disk key -> frozen state
	snapshots map[string]map[int32]*snapshotDisk
}

func newCBTState(blockSize int64) *cbtState {
	return &cbtState{blockSize: blockSize, tracks: map[string]map[int32]*diskTrack{},
		snapshots: map[string]map[int32]*snapshotDisk{}}
}

func newEpoch() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[0] = 0x52
	hex := func(p []byte) string {
		parts := make([]string, len(p))
		for i, v := range p {
			parts[i] = fmt.Sprintf("%02x", v)
		}
		return strings.Join(parts, " ")
	}
	return hex(b[:8]) + "-" + hex(b[8:])
}

func (t *diskTrack) changeID() string { return fmt.Sprintf("%s/%d", t.epoch, t.seq) }

func parseChangeID(id string) (epoch string, seq int, ok bool) {
	i := strings.LastIndex(id, "/")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return id[:i], n, true
}

var zeroDigest = func() blockDigest {
	return digestOf(nil)
}()

func digestOf(p []byte) blockDigest {
	h := sha256.New()
	h.Write(p)
	var d blockDigest
	copy(d[:], h.Sum(nil))
	return d
}

// dataRanges lists the allocated ranges of a file with SEEK_DATA/SEEK_HOLE.
func dataRanges(f *os.File, size int64) ([][2]int64, error) {
	var out [][2]int64
	const seekData, seekHole = 3, 4 // lseek(2) whence values on Linux
	fd := int(f.Fd())
	off := int64(0)
	for off < size {
		data, err := syscall.Seek(fd, off, seekData)
		if err == syscall.ENXIO {
			break
		}
		if err != nil {
			return nil, err
		}
		hole, err := syscall.Seek(fd, data, seekHole)
		if err != nil {
			return nil, err
		}
		if hole > size {
			hole = size
		}
		if data >= size {
			break
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	return out, nil
}

// takeRecord digests a flat file. When freezeTo is not empty the allocated
// data is also copied there, sparse, so the snapshot keeps its own content.
// A thick disk is allocated in full, as VMFS reports it, whatever the
// host filesystem under the simulator says about its blocks.
func takeRecord(flat string, capacity, bs int64, freezeTo string, thick bool) (*record, error) {
	f, err := os.Open(flat)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out *os.File
	if freezeTo != "" {
		out, err = os.OpenFile(freezeTo, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0644)
		if err != nil {
			return nil, err
		}
		defer out.Close()
		if err := out.Truncate(capacity); err != nil {
			return nil, err
		}
	}
	nblocks := (capacity + bs - 1) / bs
	rec := &record{capacity: capacity, digests: make([]blockDigest, nblocks), allocated: make([]bool, nblocks)}
	for i := range rec.digests {
		rec.digests[i] = zeroDigest
		rec.allocated[i] = thick
	}
	seen := make([]bool, nblocks)
	ranges, err := dataRanges(f, capacity)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, bs)
	zero := make([]byte, bs)
	for _, r := range ranges {
		for b := r[0] / bs; b*bs < r[1]; b++ {
			if seen[b] {
				continue // a block shared by two data ranges
			}
			seen[b] = true
			rec.allocated[b] = true
			n := bs
			if b*bs+n > capacity {
				n = capacity - b*bs
			}
			if _, err := f.ReadAt(buf[:n], b*bs); err != nil && err != io.EOF {
				return nil, err
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				rec.digests[b] = zeroDigest
			} else {
				rec.digests[b] = digestOf(buf[:n])
			}
			if out != nil {
				if _, err := out.WriteAt(buf[:n], b*bs); err != nil {
					return nil, err
				}
			}
		}
	}
	if out != nil {
		if err := out.Sync(); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// changedBlocks says, per block, whether it belongs in the answer: allocated
// blocks for "*", else blocks whose content differs between the two records.
func changedBlocks(from, to *record) []bool {
	if from == nil {
		return to.allocated
	}
	out := make([]bool, len(to.digests))
	for i := range to.digests {
		var prev blockDigest = zeroDigest
		if i < len(from.digests) {
			prev = from.digests[i]
		}
		out[i] = prev != to.digests[i]
	}
	return out
}

type area struct{ start, length int64 }

// page answers one QueryChangedDiskAreas call as ESXi does: at most maxAreas
// areas from startOffset, and the range examined. The range ends at the end of
// the last area when the page is full and more areas follow, else at capacity.
func page(changed []bool, bs, capacity, startOffset int64, maxAreas int) (int64, []area) {
	var areas []area
	b := startOffset / bs
	n := int64(len(changed))
	for b < n {
		if !changed[b] {
			b++
			continue
		}
		if len(areas) == maxAreas {
			last := areas[len(areas)-1]
			return last.start + last.length - startOffset, areas
		}
		e := b
		for e < n && changed[e] {
			e++
		}
		s := b * bs
		if s < startOffset {
			s = startOffset
		}
		end := e * bs
		if end > capacity {
			end = capacity
		}
		areas = append(areas, area{s, end - s})
		b = e
	}
	return capacity - startOffset, areas
}

func frozenName(flat, snapshot string) string {
	base := strings.TrimSuffix(filepath.Base(flat), "-flat.vmdk")
	return filepath.Join(filepath.Dir(flat), fmt.Sprintf("%s-%s-flat.vmdk", base, snapshot))
}
