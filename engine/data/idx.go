// Package data holds the datasets batchlab trains on and moves their batches
// to a device: MNIST, read from its original IDX files (raw or gzipped) and
// fetched through the Go module proxy; random data of the same shape; and
// the loaders, one per transfer strategy (Strategy).
package data

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// idxFile is the content of one IDX file of unsigned bytes: the dimensions from
// its header and the data, row-major.
type idxFile struct {
	Dims []int
	Data []uint8
}

const (
	idxTypeUint8 = 0x08
	// maxIDXBytes caps what a header may claim, so a corrupt or hostile file
	// cannot make us try to allocate terabytes. Full MNIST is 47 MB.
	maxIDXBytes = math.MaxInt32
)

// readIDX parses an IDX file of unsigned bytes (type 0x08) and checks that
// the data is exactly as long as the header says.
func readIDX(r io.Reader) (*idxFile, error) {
	x, err := readShaped(r, idxShape{})
	if err != nil {
		return nil, err
	}
	return x, noTrailing(r, len(x.Data))
}

// idxShape is what a file must hold: dims dimensions (0: any), and what
// to say when it does not.
type idxShape struct {
	dims int
	need string // e.g. "images need 3 dimensions (count, rows, cols)"
}

// readShaped reads the header and the data it describes, and nothing after.
// A header of other than want.dims dimensions is refused before its data is
// read, so that a file of the wrong kind is named as that.
func readShaped(r io.Reader, want idxShape) (*idxFile, error) {
	dims, size, err := readHeader(r, want)
	if err != nil {
		return nil, err
	}
	data, err := readFull(r, size)
	if err != nil {
		return nil, truncated(fmt.Sprintf("header says %d bytes of data, file has %d", size, len(data)), err)
	}
	return &idxFile{Dims: dims, Data: data}, nil
}

// readHeader reads an IDX header: the dimensions and the bytes of data they
// describe.
func readHeader(r io.Reader, want idxShape) (dims []int, size int, err error) {
	var head [4]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		return nil, 0, truncated(fmt.Sprintf("header needs 4 bytes, file has %d", n), err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, 0, fmt.Errorf("not an IDX file: magic % x, want 00 00 08 <dims>", head)
	}
	if head[2] != idxTypeUint8 {
		return nil, 0, fmt.Errorf("unsupported IDX element type 0x%02x: only 0x08 (unsigned byte) is supported", head[2])
	}
	got := int(head[3])
	if got == 0 {
		return nil, 0, errors.New("IDX header has zero dimensions")
	}
	if want.dims > 0 && got != want.dims {
		return nil, 0, fmt.Errorf("%s, header has %d", want.need, got)
	}
	raw := make([]uint32, got)
	if err := binary.Read(r, binary.BigEndian, raw); err != nil {
		return nil, 0, truncated(fmt.Sprintf("header says %d dimensions, file ends before their sizes", got), err)
	}
	dims = make([]int, got)
	n := uint64(1)
	for i, d := range raw {
		if d == 0 {
			return nil, 0, fmt.Errorf("IDX dimension %d of %v is zero", i, raw)
		}
		// size ≤ maxIDXBytes < 2³¹ and d < 2³², so the product cannot overflow.
		n *= uint64(d)
		if n > maxIDXBytes {
			return nil, 0, fmt.Errorf("IDX dimensions %v describe more than %d bytes", raw, maxIDXBytes)
		}
		dims[i] = int(d)
	}
	return dims, int(n), nil
}

// noTrailing checks that r is at its end after the size bytes of data.
func noTrailing(r io.Reader, size int) error {
	var extra [1]byte
	switch _, err := io.ReadFull(r, extra[:]); {
	case err == nil:
		return fmt.Errorf("trailing garbage after the %d bytes of data the header describes", size)
	case err != io.EOF:
		// A gzip stream cut in its trailer ends here, after all the data.
		return truncated("the file ends in the middle of its compressed stream", err)
	}
	return nil
}

// truncated reports a short read as truncation, and any other read error
// (a bad gzip stream, an I/O failure) as itself.
func truncated(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("truncated: " + what)
	}
	return err
}

// readFull reads exactly n bytes. The buffer grows as data arrives, so a
// header that claims more than the input holds costs no big allocation.
// On error it returns what it read.
func readFull(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, 1<<20))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return buf[:got], err
		}
		if got == n {
			return buf, nil
		}
		bigger := make([]byte, min(n, 2*len(buf)))
		copy(bigger, buf)
		buf = bigger
	}
}

// openIDX reads an IDX file, gunzipping it first if it starts with the gzip
// magic (whatever its name). Errors name the file.
func openIDX(path string) (*idxFile, error) {
	x, _, err := openShaped(path, idxShape{})
	return x, err
}

// FileSum identifies a data file: a checkpoint records it, so that a run is
// resumed only on the data it started on.
type FileSum struct {
	Name   string `json:"name"` // base name
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// peekIDX reads only the header of an IDX file, gzipped or not.
func peekIDX(path string, want idxShape) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, gzipError(truncated("the gzip header is cut short", err)))
		}
		defer zr.Close()
		r = zr
	}
	dims, _, err := readHeader(r, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, gzipError(err))
	}
	return dims, nil
}

// openShaped reads an IDX file of the shape wanted and sums the file.
// A gzip stream is read to its end, so that its checksum is checked before
// anything after the data is called garbage: flipped bytes inside the
// compressed data are corruption, bytes after the stream are trailing.
func openShaped(path string, want idxShape) (*idxFile, FileSum, error) {
	sum := FileSum{Name: filepath.Base(path)}
	f, err := os.Open(path)
	if err != nil {
		return nil, sum, err
	}
	defer f.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, h)}
	br := bufio.NewReaderSize(counted, 1<<16)
	fail := func(err error) (*idxFile, FileSum, error) { return nil, sum, fmt.Errorf("%s: %w", path, err) }
	var x *idxFile
	// A file too short to peek is not gzip; readShaped reports it as truncated.
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fail(gzipError(truncated("the gzip header is cut short", err)))
		}
		defer zr.Close()
		zr.Multistream(false)
		if x, err = readShaped(zr, want); err != nil {
			return fail(gzipError(err))
		}
		switch rest, err := io.Copy(io.Discard, zr); {
		case err != nil:
			return fail(gzipError(truncated("the file ends in the middle of its compressed stream", err)))
		case rest > 0:
			return fail(fmt.Errorf("trailing garbage after the %d bytes of data the header describes (%d more inside the gzip stream)", len(x.Data), rest))
		}
		if after, _ := io.Copy(io.Discard, br); after > 0 {
			return fail(fmt.Errorf("%d bytes of something else after the end of the gzip stream", after))
		}
	} else {
		if x, err = readShaped(br, want); err != nil {
			return fail(err)
		}
		if err := noTrailing(br, len(x.Data)); err != nil {
			return fail(err)
		}
	}
	sum.Size, sum.SHA256 = counted.n, hex.EncodeToString(h.Sum(nil))
	return x, sum, nil
}

// gzipError names a corrupt compressed stream as such; a short one stays truncated.
func gzipError(err error) error {
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("the compressed data is corrupt (%v)", err)
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// writeIDX writes x as an IDX file of unsigned bytes.
func writeIDX(w io.Writer, x *idxFile) error {
	if len(x.Dims) == 0 || len(x.Dims) > math.MaxUint8 {
		return fmt.Errorf("IDX needs 1 to 255 dimensions, got %d", len(x.Dims))
	}
	head := []byte{0, 0, idxTypeUint8, byte(len(x.Dims))}
	size := 1
	for _, d := range x.Dims {
		if d <= 0 || d > maxIDXBytes {
			return fmt.Errorf("IDX dimension %d out of range in %v", d, x.Dims)
		}
		size *= d
		if size > maxIDXBytes {
			return fmt.Errorf("IDX dimensions %v describe more than %d bytes", x.Dims, maxIDXBytes)
		}
		head = binary.BigEndian.AppendUint32(head, uint32(d))
	}
	if size != len(x.Data) {
		return fmt.Errorf("IDX dimensions %v need %d bytes, data has %d", x.Dims, size, len(x.Data))
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err := w.Write(x.Data)
	return err
}
