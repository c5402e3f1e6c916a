package syncer

// The schedule is a binary min-heap of entries ordered by due time, with
// each slot's position kept in slot.pos so that an entry can be moved
// (Now) or removed (Remove) in O(log n). Every method here needs s.mu.

// push queues slot i at due.
func (s *Syncer) push(i int32, due int64) {
	s.heap = append(s.heap, entry{due: due, slot: i})
	p := int32(len(s.heap) - 1)
	s.slots[i].pos = p
	s.up(p)
}

// remove takes the entry at position p out of the heap.
func (s *Syncer) remove(p int32) {
	last := int32(len(s.heap) - 1)
	s.slots[s.heap[p].slot].pos = -1
	if p != last {
		s.heap[p] = s.heap[last]
		s.slots[s.heap[p].slot].pos = p
	}
	s.heap = s.heap[:last]
	if p != last {
		s.fix(p)
	}
}

// fix restores the heap order after the entry at p changed.
func (s *Syncer) fix(p int32) {
	if !s.down(p) {
		s.up(p)
	}
}

func (s *Syncer) less(a, b int32) bool { return s.heap[a].due < s.heap[b].due }

func (s *Syncer) swap(a, b int32) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.slots[s.heap[a].slot].pos = a
	s.slots[s.heap[b].slot].pos = b
}

func (s *Syncer) up(p int32) {
	for p > 0 {
		parent := (p - 1) / 2
		if !s.less(p, parent) {
			return
		}
		s.swap(p, parent)
		p = parent
	}
}

// down moves the entry at p down and reports whether it moved.
func (s *Syncer) down(p int32) bool {
	start, n := p, int32(len(s.heap))
	for {
		l := 2*p + 1
		if l >= n || l < 0 {
			break
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, p) {
			break
		}
		s.swap(p, m)
		p = m
	}
	return p > start
}
