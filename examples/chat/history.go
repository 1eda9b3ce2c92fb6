package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
	bolt "go.etcd.io/bbolt"
)

// The chat's own buckets, beside boltstore's.
var (
	bucketContacts = []byte("chat.contacts") // user -> device number
	bucketMessages = []byte("chat.messages") // sequence -> message JSON
	bucketByID     = []byte("chat.byid")     // message id -> sequence
	bucketMeta     = []byte("chat.meta")
	bucketFiles    = []byte("chat.files") // file number -> attach.Pointer encoding
)

// Message statuses. Outgoing: queued (in the outbox), sent (the relay
// stored it), delivered, read. Incoming: received, read.
const (
	statusQueued    = "queued"
	statusSent      = "sent"
	statusDelivered = "delivered"
	statusRead      = "read"
	statusReceived  = "received"
	statusFailed    = "failed"
)

// rank orders outgoing statuses so a late delivery receipt never
// downgrades a read one.
var rank = map[string]int{statusQueued: 1, statusSent: 2, statusDelivered: 3, statusRead: 4}

type message struct {
	ID     string     `json:"id"`
	Peer   string     `json:"peer"` // user
	Device uint32     `json:"device"`
	Out    bool       `json:"out"`
	Body   string     `json:"body"`
	Files  []fileInfo `json:"files,omitempty"`
	Status string     `json:"status"`
	Time   time.Time  `json:"time"`
}

// fileInfo is what the history shows of a file a message carries; the
// pointer itself (with the file's key and the relay's capability to fetch
// it) is in bucketFiles under N, in this file beside the device's keys.
type fileInfo struct {
	N    uint64 `json:"n"` // the number /save takes
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type,omitempty"`
}

// text is the message as the terminal shows it: its body, then its files.
func (m *message) text() string {
	parts := make([]string, 0, 1+len(m.Files))
	if m.Body != "" {
		parts = append(parts, m.Body)
	}
	for _, f := range m.Files {
		parts = append(parts, f.String())
	}
	return strings.Join(parts, " ")
}

func (f fileInfo) String() string {
	return fmt.Sprintf("[file %d: %s, %s]", f.N, displayName(f.Name), sizeText(f.Size))
}

type history struct{ db *bolt.DB }

func openHistory(db *bolt.DB) (*history, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContacts, bucketMessages, bucketByID, bucketMeta, bucketFiles} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &history{db: db}, err
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func (h *history) meta(key string) string {
	var v string
	h.db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get([]byte(key)))
		return nil
	})
	return v
}

func (h *history) setMeta(key, value string) error {
	return h.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value))
	})
}

func (h *history) addContact(a sealpost.Address) error {
	return h.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).Put([]byte(a.User), []byte(strconv.FormatUint(uint64(a.Device), 10)))
	})
}

// contact returns the address saved for user.
func (h *history) contact(user string) (sealpost.Address, bool) {
	var a sealpost.Address
	var ok bool
	h.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketContacts).Get([]byte(user))
		if d, err := strconv.ParseUint(string(v), 10, 32); v != nil && err == nil {
			a, ok = sealpost.Address{User: user, Device: uint32(d)}, true
		}
		return nil
	})
	return a, ok
}

func (h *history) contacts() []sealpost.Address {
	var out []sealpost.Address
	h.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			d, _ := strconv.ParseUint(string(v), 10, 32)
			out = append(out, sealpost.Address{User: string(k), Device: uint32(d)})
			return nil
		})
	})
	return out
}

// has reports whether a message with id is in the history.
func (h *history) has(id sealpost.MessageID) bool {
	var ok bool
	h.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketByID).Get(id[:]) != nil
		return nil
	})
	return ok
}

// putMessage stores m, numbering the files it carries (ptrs, in m.Files'
// order) and keeping their pointers.
func putMessage(tx *bolt.Tx, id sealpost.MessageID, m *message, ptrs []*attach.Pointer) error {
	files := tx.Bucket(bucketFiles)
	m.Files = nil
	for _, p := range ptrs {
		n, err := files.NextSequence()
		if err != nil {
			return err
		}
		raw, err := p.MarshalBinary()
		if err != nil {
			return err
		}
		if err := files.Put(seqKey(n), raw); err != nil {
			return err
		}
		m.Files = append(m.Files, fileInfo{N: n, Name: p.Name, Size: p.Length, Type: p.MediaType})
	}
	msgs := tx.Bucket(bucketMessages)
	n, err := msgs.NextSequence()
	if err != nil {
		return err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := msgs.Put(seqKey(n), raw); err != nil {
		return err
	}
	return tx.Bucket(bucketByID).Put(id[:], seqKey(n))
}

// addIncoming stores a received message with its files' pointers, and
// returns it as stored (with the files' numbers).
func (h *history) addIncoming(in *sealpost.Incoming, now time.Time) (*message, error) {
	m := &message{ID: in.ID.String(), Peer: in.From.User, Device: in.From.Device,
		Body: string(in.Body), Status: statusReceived, Time: now}
	return m, h.db.Update(func(tx *bolt.Tx) error {
		return putMessage(tx, in.ID, m, in.Attachments)
	})
}

// queueMessage records an outgoing message to user in the history as
// queued (device 0: to every device of user's account). The envelopes
// themselves wait in the Device's outbox (Unsent) until posted.
func (h *history) queueMessage(id sealpost.MessageID, user string, device uint32, body string, files []*attach.Pointer, now time.Time) (*message, error) {
	m := &message{ID: id.String(), Peer: user, Device: device, Out: true, Body: body, Status: statusQueued, Time: now}
	return m, h.db.Update(func(tx *bolt.Tx) error {
		return putMessage(tx, id, m, files)
	})
}

// addSync stores the copy of a message our other device sent to
// in.SyncFor, as an outgoing message the relay has.
func (h *history) addSync(in *sealpost.Incoming, now time.Time) (*message, error) {
	m := &message{ID: in.ID.String(), Peer: in.SyncFor, Out: true, Body: string(in.Body), Status: statusSent, Time: now}
	return m, h.db.Update(func(tx *bolt.Tx) error {
		return putMessage(tx, in.ID, m, in.Attachments)
	})
}

// file returns the pointer of file n.
func (h *history) file(n uint64) (*attach.Pointer, error) {
	var raw []byte
	h.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketFiles).Get(seqKey(n)))
		return nil
	})
	if raw == nil {
		return nil, fmt.Errorf("no file %d (see /history)", n)
	}
	return attach.ParsePointer(raw)
}

// posted moves an outgoing message to status once its envelope left (or
// was refused). It returns the message, or nil for a receipt or a message
// the history does not hold (sent just before a crash, before it was
// recorded).
func (h *history) posted(id sealpost.MessageID, status string) (*message, error) {
	if id == (sealpost.MessageID{}) {
		return nil, nil
	}
	var m *message
	err := h.db.Update(func(tx *bolt.Tx) error {
		var err error
		m, err = setStatus(tx, id.String(), status, true, "")
		return err
	})
	return m, err
}

// setStatus moves a message to status (for outgoing ones, only upwards;
// with peer set, only a message with that peer). It returns the message,
// or nil when it is unknown or unchanged.
func setStatus(tx *bolt.Tx, idHex, status string, force bool, peer string) (*message, error) {
	var id sealpost.MessageID
	if n, err := hexDecode(idHex, id[:]); err != nil || n != len(id) {
		return nil, errors.New("bad message id")
	}
	k := tx.Bucket(bucketByID).Get(id[:])
	if k == nil {
		return nil, nil
	}
	msgs := tx.Bucket(bucketMessages)
	var m message
	if err := json.Unmarshal(msgs.Get(k), &m); err != nil {
		return nil, err
	}
	if m.Status == status || (!force && m.Out && rank[status] <= rank[m.Status]) || (peer != "" && m.Peer != peer) {
		return nil, nil
	}
	m.Status = status
	raw, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	return &m, msgs.Put(k, raw)
}

// receipts applies delivery and read receipts to our messages and returns
// the ones that changed.
func (h *history) receipts(from sealpost.Address, delivered, read []sealpost.MessageID) ([]*message, error) {
	var changed []*message
	err := h.db.Update(func(tx *bolt.Tx) error {
		apply := func(ids []sealpost.MessageID, status string) error {
			for _, id := range ids {
				// Only the recipient's receipts count: our own other
				// devices acknowledge the sync copies too.
				m, err := setStatus(tx, id.String(), status, false, from.User)
				if err != nil {
					return err
				}
				if m != nil && m.Out {
					changed = append(changed, m)
				}
			}
			return nil
		}
		if err := apply(delivered, statusDelivered); err != nil {
			return err
		}
		return apply(read, statusRead)
	})
	return changed, err
}

// messages returns the history with user (everyone when empty), oldest first.
func (h *history) messages(user string) []message {
	var out []message
	h.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(_, v []byte) error {
			var m message
			if json.Unmarshal(v, &m) == nil && (user == "" || m.Peer == user) {
				out = append(out, m)
			}
			return nil
		})
	})
	return out
}

// markReadIDs marks the messages ids from user read, as our other device
// reported (read-sync), and returns how many were unread.
func (h *history) markReadIDs(user string, ids []sealpost.MessageID) (int, error) {
	n := 0
	err := h.db.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			m, err := setStatus(tx, id.String(), statusRead, true, user)
			if err != nil {
				return err
			}
			if m != nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// markRead moves every received message from user to read and returns
// their ids, by the device of user's that sent them.
func (h *history) markRead(user string) (map[uint32][]sealpost.MessageID, error) {
	ids := map[uint32][]sealpost.MessageID{}
	err := h.db.Update(func(tx *bolt.Tx) error {
		var unread []string
		var devices []uint32
		err := tx.Bucket(bucketMessages).ForEach(func(_, v []byte) error {
			var m message
			if json.Unmarshal(v, &m) == nil && !m.Out && m.Peer == user && m.Status == statusReceived {
				unread = append(unread, m.ID)
				devices = append(devices, m.Device)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, idHex := range unread { // not while iterating: bbolt forbids it
			var id sealpost.MessageID
			if _, err := hexDecode(idHex, id[:]); err != nil {
				continue
			}
			if _, err := setStatus(tx, idHex, statusRead, true, ""); err != nil {
				return err
			}
			ids[devices[i]] = append(ids[devices[i]], id)
		}
		return nil
	})
	return ids, err
}

func hexDecode(s string, dst []byte) (int, error) {
	if hex.DecodedLen(len(s)) != len(dst) {
		return 0, errors.New("bad message id length")
	}
	return hex.Decode(dst, []byte(s))
}

// relayKey returns the relay key stored under name in the meta bucket,
// generating and storing a new one the first time (in one transaction, so
// two starts cannot store two keys).
func (h *history) relayKey(name string) (*client.Key, error) {
	var k *client.Key
	err := h.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if seed := b.Get([]byte(name)); seed != nil {
			var err error
			k, err = client.ParseKey(seed)
			if err != nil {
				return fmt.Errorf("chat: stored relay key %s: %w", name, err)
			}
			return nil
		}
		nk, err := client.NewKey()
		if err != nil {
			return err
		}
		k = nk
		return b.Put([]byte(name), nk.Bytes())
	})
	return k, err
}

func (h *history) deleteMeta(key string) error {
	return h.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete([]byte(key))
	})
}

// metaKeys returns the meta keys starting with prefix.
func (h *history) metaKeys(prefix string) []string {
	var keys []string
	h.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys
}
