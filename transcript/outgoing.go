package transcript

// sentEntry is one of our contents in the sent log. Its seq follows from
// its position: the newest entry is seq sent.
type sentEntry struct {
	id   [16]byte
	hash [32]byte
}

// outgoing is our chain and the peer's newest report about it.
type outgoing struct {
	sent uint64   // contents sent; the newest has seq sent
	head [32]byte // hash of content sent (zero when sent is 0)
	log  ring[sentEntry]
	// The report carried by peer content ackFrom: the peer held our first
	// ackCount contents and, if ackAbove is not 0, content ackAbove but
	// none of ackCount+1..ackAbove-1.
	ackFrom, ackCount, ackAbove uint64
}

// record appends our next content, with id and hash h.
func (o *outgoing) record(id [16]byte, h [32]byte) {
	o.sent++
	o.head = h
	o.log.push(sentEntry{id: id, hash: h})
}

// first returns the lowest seq still in the sent log.
func (o *outgoing) first() uint64 { return o.sent - uint64(o.log.len()) + 1 }

// entry returns our content seq if the sent log still holds it.
func (o *outgoing) entry(seq uint64) (*sentEntry, bool) {
	if seq == 0 || seq > o.sent || seq < o.first() {
		return nil, false
	}
	return o.log.at(int(seq - o.first())), true
}

// drops returns the range of our seqs the peer's newest report says it
// lacks while it holds a later one.
func (o *outgoing) drops() (from, to uint64, ok bool) {
	if o.ackAbove == 0 {
		return 0, 0, false
	}
	return o.ackCount + 1, o.ackAbove - 1, true
}

// dropFinding returns a Drop finding for our seqs from..to with the ids of
// those still in the sent log.
func (o *outgoing) dropFinding(from, to uint64) Finding {
	f := Finding{Kind: Drop, Outgoing: true, Seq: from, ToSeq: to}
	lo := max(from, o.first())
	if lo <= to {
		f.IDs = make([][16]byte, 0, to-lo+1)
	}
	for s := lo; s <= to && s >= lo; s++ {
		e, _ := o.entry(s)
		f.IDs = append(f.IDs, e.id)
	}
	return f
}

// ack checks the report that a peer content carries about our chain (step
// 3 of Received) and adopts it when it is the newest, appending findings:
// a Fork when the report contradicts our log, a Drop for our seqs that the
// adopted report newly names as missing.
func (o *outgoing) ack(f *Fields, found []Finding) []Finding {
	if f.AckCount > o.sent || f.AckAbove > o.sent {
		return append(found, Finding{Kind: Fork, Outgoing: true, Seq: o.sent + 1, ToSeq: max(f.AckCount, f.AckAbove)})
	}
	if e, ok := o.entry(f.AckCount); ok && e.hash != f.AckHash {
		found = append(found, Finding{Kind: Fork, Outgoing: true, Seq: f.AckCount, ToSeq: f.AckCount, IDs: [][16]byte{e.id}})
	}
	if f.Seq <= o.ackFrom {
		return found // an older report than the one held
	}
	if f.AckCount < o.ackCount {
		return append(found, Finding{Kind: Fork, Outgoing: true, Seq: f.AckCount + 1, ToSeq: o.ackCount})
	}
	oldFrom, oldTo, had := o.drops()
	o.ackFrom, o.ackCount, o.ackAbove = f.Seq, f.AckCount, f.AckAbove
	from, to, ok := o.drops()
	switch {
	case !ok:
	case !had || to < oldFrom || from > oldTo:
		found = append(found, o.dropFinding(from, to))
	default:
		if from < oldFrom {
			found = append(found, o.dropFinding(from, oldFrom-1))
		}
		if to > oldTo {
			found = append(found, o.dropFinding(oldTo+1, to))
		}
	}
	return found
}
