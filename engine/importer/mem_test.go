package importer

import "runtime"

// runtimeMem is a snapshot of the allocator's counters.
type runtimeMem struct{ totalAlloc, heapInuse uint64 }

// read takes the snapshot, after a garbage collection if gc is set.
func (m *runtimeMem) read(gc bool) {
	if gc {
		runtime.GC()
	}
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.totalAlloc, m.heapInuse = s.TotalAlloc, s.HeapInuse
}
