// Package data holds the datasets batchlab trains on and moves their batches
// to a device: MNIST, read from its original IDX files (raw or gzipped) and
// fetched through the Go module proxy; random data of the same shape; and
// the loaders, one per transfer strategy (Strategy).
package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
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
	var head [4]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		return nil, truncated(fmt.Sprintf("header needs 4 bytes, file has %d", n), err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("not an IDX file: magic % x, want 00 00 08 <dims>", head)
	}
	if head[2] != idxTypeUint8 {
		return nil, fmt.Errorf("unsupported IDX element type 0x%02x: only 0x08 (unsigned byte) is supported", head[2])
	}
	ndims := int(head[3])
	if ndims == 0 {
		return nil, errors.New("IDX header has zero dimensions")
	}
	raw := make([]uint32, ndims)
	if err := binary.Read(r, binary.BigEndian, raw); err != nil {
		return nil, truncated(fmt.Sprintf("header says %d dimensions, file ends before their sizes", ndims), err)
	}
	dims := make([]int, ndims)
	size := uint64(1)
	for i, d := range raw {
		if d == 0 {
			return nil, fmt.Errorf("IDX dimension %d of %v is zero", i, raw)
		}
		// size ≤ maxIDXBytes < 2³¹ and d < 2³², so the product cannot overflow.
		size *= uint64(d)
		if size > maxIDXBytes {
			return nil, fmt.Errorf("IDX dimensions %v describe more than %d bytes", raw, maxIDXBytes)
		}
		dims[i] = int(d)
	}
	data, err := readFull(r, int(size))
	if err != nil {
		return nil, truncated(fmt.Sprintf("header says %d bytes of data, file has %d", size, len(data)), err)
	}
	var extra [1]byte
	switch _, err := io.ReadFull(r, extra[:]); {
	case err == nil:
		return nil, fmt.Errorf("trailing garbage after the %d bytes of data the header describes", size)
	case err != io.EOF:
		// A gzip stream cut in its trailer ends here, after all the data.
		return nil, truncated("the file ends in the middle of its compressed stream", err)
	}
	return &idxFile{Dims: dims, Data: data}, nil
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	// A file too short to peek is not gzip; ReadIDX reports it as truncated.
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, truncated("the gzip header is cut short", err))
		}
		defer zr.Close()
		r = zr
	}
	x, err := readIDX(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
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
