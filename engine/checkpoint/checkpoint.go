// Package checkpoint stores training state in a versioned, self-describing,
// checksummed file, written atomically (engine/atomicfile), so that a crash,
// a kill or a full disk never leaves a half-written checkpoint where a good
// one was.
//
// A checkpoint is opaque JSON metadata (the run's config, epoch, step,
// schedule state, metrics so far: whatever the caller needs) and named
// float32 tensors (parameters, optimizer state). File layout, format
// version 1, every integer little-endian:
//
//	offset  size  field
//	0       8     magic "BLABCKPT"
//	8       4     format version, uint32
//	12      4     H, the length of the index, uint32
//	16      H     index:
//	                uint32 M, then M bytes of metadata (JSON; M = 0: none)
//	                uint32 T, the number of tensors, then for each:
//	                  uint32 N, then N bytes of name (UTF-8, unique, not empty)
//	                  uint32 R, then R uint64 dimensions (row-major; R = 0: a scalar)
//	16+H    4     CRC-32C of bytes [0, 16+H)
//	20+H    ...   each tensor's values in index order, float32
//	end-4   4     CRC-32C of every byte before it
//
// The index has a checksum of its own so that no length in it is believed
// before it is known to be intact; the last checksum covers everything.
//
// Why CRC-32C and not SHA-256: what we guard against is accidental damage
// (a torn or truncated write, a bad copy, a flipped bit), not an adversary.
// CRC-32C detects every error burst of up to 32 bits, so one damaged byte
// anywhere is always caught; it lets random damage through with probability
// 2⁻³²; and it runs at memory speed on CPUs with a CRC instruction
// (SSE4.2, ARMv8), so checkpointing a large model often costs nothing
// noticeable. Reading safely does not depend on it: a crafted file with
// matching checksums still cannot make read panic or allocate much more
// than the bytes it actually contains.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// version is the format version write produces and the newest read accepts.
const version = 1

const (
	magic     = "BLABCKPT"
	prefixLen = len(magic) + 4 + 4 // magic, version, index length
	// chunk is how many bytes of tensor data are encoded or decoded at a
	// time: large enough for efficient I/O, small enough that a file which
	// claims a huge tensor but ends early costs little memory.
	chunk = 64 << 10
	// maxElements keeps a tensor's size in bytes within an int.
	maxElements = math.MaxInt / 4
)

var (
	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// errCorrupt is wrapped by every error read returns for a damaged or
// truncated checkpoint (as opposed to an I/O error, a file that is not a
// checkpoint at all, or one from a newer format version).
var errCorrupt = errors.New("corrupt checkpoint")

// Tensor is a named array of float32 values in row-major order.
type Tensor struct {
	Name  string
	Shape []int // empty for a scalar
	Data  []float32
}

// Checkpoint is what a file holds.
type Checkpoint struct {
	// Meta is JSON (or empty) that this package stores without looking
	// inside: callers json.Marshal their state into it and json.Unmarshal
	// it back.
	Meta    json.RawMessage
	Tensors []Tensor
}

// Tensor returns the tensor called name, or nil.
func (c *Checkpoint) Tensor(name string) *Tensor {
	for i := range c.Tensors {
		if c.Tensors[i].Name == name {
			return &c.Tensors[i]
		}
	}
	return nil
}

// Match checks that the checkpoint holds exactly the tensors of want, by
// name, with the same shapes (want's Data is not looked at), and otherwise
// says every difference, e.g. "checkpoint has fc1.weight 784×256, the model
// has 784×512".
func (c *Checkpoint) Match(want []Tensor) error {
	var diffs []string
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w.Name] = true
		switch t := c.Tensor(w.Name); {
		case t == nil:
			diffs = append(diffs, fmt.Sprintf("the model has %s %s, the checkpoint does not", w.Name, shapeString(w.Shape)))
		case !slices.Equal(t.Shape, w.Shape):
			diffs = append(diffs, fmt.Sprintf("checkpoint has %s %s, the model has %s", w.Name, shapeString(t.Shape), shapeString(w.Shape)))
		}
	}
	for _, t := range c.Tensors {
		if !wanted[t.Name] {
			diffs = append(diffs, fmt.Sprintf("checkpoint has %s %s, the model does not", t.Name, shapeString(t.Shape)))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("checkpoint does not fit the model: %s", strings.Join(diffs, "; "))
	}
	return nil
}

func shapeString(shape []int) string {
	if len(shape) == 0 {
		return "scalar"
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	return strings.Join(dims, "×")
}

// elements is the number of values a tensor of shape holds; false if a
// dimension is negative or the count is too large to address.
func elements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 || d > 0 && n > maxElements/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// The checks below are shared by write and read, so that read accepts
// exactly what write produces and every accepted file re-encodes to itself.

func checkMeta(meta []byte) error {
	if len(meta) > 0 && !json.Valid(meta) {
		return errors.New("metadata is not valid JSON")
	}
	return nil
}

func checkName(name string, seen map[string]bool) error {
	switch {
	case name == "":
		return errors.New("a tensor has an empty name")
	case !utf8.ValidString(name):
		return fmt.Errorf("tensor name %q is not valid UTF-8", name)
	case seen[name]:
		return fmt.Errorf("two tensors are called %q", name)
	}
	seen[name] = true
	return nil
}

// write encodes c to w. It refuses a checkpoint it could not read back:
// metadata that is not JSON, names that are empty, repeated or not UTF-8,
// a shape whose size differs from the number of values.
func write(w io.Writer, c *Checkpoint) error {
	index, err := encodeIndex(c)
	if err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	head := make([]byte, 0, prefixLen+len(index)+4)
	head = append(head, magic...)
	head = le.AppendUint32(head, version)
	head = le.AppendUint32(head, uint32(len(index)))
	head = append(head, index...)
	head = le.AppendUint32(head, crc32.Checksum(head, castagnoli))

	sum := crc32.New(castagnoli)
	hw := io.MultiWriter(w, sum)
	if _, err := hw.Write(head); err != nil {
		return err
	}
	buf := make([]byte, 0, chunk)
	for _, t := range c.Tensors {
		for data := t.Data; len(data) > 0; {
			n := min(len(data), chunk/4)
			buf = buf[:0]
			for _, v := range data[:n] {
				buf = le.AppendUint32(buf, math.Float32bits(v))
			}
			if _, err := hw.Write(buf); err != nil {
				return err
			}
			data = data[n:]
		}
	}
	_, err = w.Write(le.AppendUint32(nil, sum.Sum32()))
	return err
}

func encodeIndex(c *Checkpoint) ([]byte, error) {
	if err := checkMeta(c.Meta); err != nil {
		return nil, err
	}
	b := le.AppendUint32(nil, uint32(len(c.Meta)))
	b = append(b, c.Meta...)
	b = le.AppendUint32(b, uint32(len(c.Tensors)))
	seen := make(map[string]bool, len(c.Tensors))
	for _, t := range c.Tensors {
		if err := checkName(t.Name, seen); err != nil {
			return nil, err
		}
		if n, ok := elements(t.Shape); !ok || n != len(t.Data) {
			return nil, fmt.Errorf("tensor %s has shape %v but %d values", t.Name, t.Shape, len(t.Data))
		}
		b = le.AppendUint32(b, uint32(len(t.Name)))
		b = append(b, t.Name...)
		b = le.AppendUint32(b, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			b = le.AppendUint64(b, uint64(d))
		}
	}
	// Every uint32 written above (a length or a count) is at most the
	// index's own length, so this one check covers them all.
	if uint64(len(b)) > math.MaxUint32 {
		return nil, fmt.Errorf("the index (metadata, names and shapes) is %d bytes, over the format's 4 GiB", len(b))
	}
	return b, nil
}

// read decodes one checkpoint, which must be all that is left in r. It
// checks the magic, the version, every length and shape and both
// checksums; a damaged or truncated file gives an error wrapping
// errCorrupt. Memory grows only as data arrives, so a header that claims
// huge tensors costs little unless the bytes are really there.
func read(r io.Reader) (*Checkpoint, error) {
	cr := &crcReader{r: r, sum: crc32.New(castagnoli)}

	var prefix [prefixLen]byte
	n, err := io.ReadFull(cr, prefix[:])
	if got := prefix[:min(n, len(magic))]; string(got) != magic[:len(got)] {
		return nil, fmt.Errorf("not a batchlab checkpoint: it starts with %q, not %q", got, magic)
	}
	if n >= len(magic)+4 {
		if v := le.Uint32(prefix[len(magic):]); v != version {
			return nil, fmt.Errorf("checkpoint format version %d: this batchlab reads version %d only (a newer batchlab wrote it, or the file is damaged)", v, version)
		}
	}
	if err != nil {
		return nil, cr.fail(err, "in the header")
	}

	var index bytes.Buffer // grows as bytes arrive, unlike make([]byte, claimed)
	if _, err := io.CopyN(&index, cr, int64(le.Uint32(prefix[len(magic)+4:]))); err != nil {
		return nil, cr.fail(err, "in the index")
	}
	if err := cr.checksum("index"); err != nil {
		return nil, err
	}
	c, sizes, err := decodeIndex(index.Bytes())
	if err != nil {
		return nil, err
	}

	buf := make([]byte, min(chunk, 4*slices.Max(append(sizes, 0))))
	for i := range c.Tensors {
		t := &c.Tensors[i]
		if t.Data, err = readFloats(cr, sizes[i], buf); err != nil {
			return nil, cr.fail(err, "in tensor "+t.Name)
		}
	}
	if err := cr.checksum("file"); err != nil {
		return nil, err
	}
	var extra [1]byte
	if _, err := io.ReadFull(cr.r, extra[:]); err != io.EOF {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: more data after its end, at byte %d", errCorrupt, cr.n)
	}
	return c, nil
}

// decodeIndex parses the (checksummed) index into a checkpoint without
// data, and the number of values of each tensor.
func decodeIndex(b []byte) (*Checkpoint, []int, error) {
	p := parser{b: b}
	c := &Checkpoint{}
	if meta := p.take(uint64(p.u32())); len(meta) > 0 {
		c.Meta = bytes.Clone(meta)
	}
	if p.err == nil {
		p.check(checkMeta(c.Meta))
	}
	var sizes []int
	seen := make(map[string]bool)
	// Every tensor takes at least 9 bytes of the index or sets p.err, so a
	// wrong count cannot make this loop long.
	for count := p.u32(); count > 0 && p.err == nil; count-- {
		name := string(p.take(uint64(p.u32())))
		if p.err != nil || p.check(checkName(name, seen)) {
			break
		}
		shape := make([]int, 0, 4)
		for rank := p.u32(); rank > 0 && p.err == nil; rank-- {
			d := p.u64()
			if d > math.MaxInt {
				p.check(fmt.Errorf("tensor %s has a dimension of %d", name, d))
			}
			shape = append(shape, int(d))
		}
		n, ok := elements(shape)
		if !ok {
			p.check(fmt.Errorf("tensor %s has an impossible shape %v", name, shape))
		}
		c.Tensors = append(c.Tensors, Tensor{Name: name, Shape: shape})
		sizes = append(sizes, n)
	}
	if p.err == nil && len(p.b) > 0 {
		p.check(fmt.Errorf("%d bytes left over at the end of the index", len(p.b)))
	}
	if p.err != nil {
		return nil, nil, fmt.Errorf("%w: bad index: %v", errCorrupt, p.err)
	}
	return c, sizes, nil
}

// parser reads the index; after the first error it returns zeros.
type parser struct {
	b   []byte
	err error
}

func (p *parser) take(n uint64) []byte {
	if p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.err = fmt.Errorf("it needs %d more bytes than it has", n-uint64(len(p.b)))
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}

func (p *parser) u32() uint32 {
	if b := p.take(4); b != nil {
		return le.Uint32(b)
	}
	return 0
}

func (p *parser) u64() uint64 {
	if b := p.take(8); b != nil {
		return le.Uint64(b)
	}
	return 0
}

// check records err, if it is the first; it reports whether p has failed.
func (p *parser) check(err error) bool {
	if p.err == nil {
		p.err = err
	}
	return p.err != nil
}

// readFloats reads n little-endian float32 values through buf.
func readFloats(r io.Reader, n int, buf []byte) ([]float32, error) {
	data := make([]float32, 0, min(n, chunk/4))
	for len(data) < n {
		b := buf[:min(len(buf), (n-len(data))*4)]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		for i := 0; i < len(b); i += 4 {
			data = append(data, math.Float32frombits(le.Uint32(b[i:])))
		}
	}
	return data, nil
}

// crcReader checksums and counts what is read through it.
type crcReader struct {
	r   io.Reader
	sum hash.Hash32
	n   int64
}

func (cr *crcReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.sum.Write(p[:n])
	cr.n += int64(n)
	return n, err
}

// checksum reads a stored CRC and compares it with that of everything
// read before it.
func (cr *crcReader) checksum(what string) error {
	want := cr.sum.Sum32()
	var b [4]byte
	if _, err := io.ReadFull(cr, b[:]); err != nil {
		return cr.fail(err, "before the "+what+" checksum")
	}
	if got := le.Uint32(b[:]); got != want {
		return fmt.Errorf("%w: %s checksum mismatch (stored %08x, computed %08x)", errCorrupt, what, got, want)
	}
	return nil
}

// fail turns an early end of input into a truncation error and passes
// other errors through.
func (cr *crcReader) fail(err error, where string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated after %d bytes, %s", errCorrupt, cr.n, where)
	}
	return err
}
