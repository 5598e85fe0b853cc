package checkpoint

import (
	"fmt"
	"io"
	"os"

	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Save writes c to path atomically (atomicfile.Write): path holds either
// the previous checkpoint or the new one, whole, whatever happens.
//
// No copy of the previous checkpoint is kept (no path.prev): the rename
// already guarantees that a failed save leaves it in place, and a second
// copy would double the disk space needed on the disk most likely to be
// full. A caller that wants history saves under different names.
func Save(path string, c *Checkpoint) error {
	return atomicfile.Write(path, func(w io.Writer) error { return write(w, c) })
}

// Load reads the checkpoint at path; its errors name the file, and a
// missing file gives an error wrapping fs.ErrNotExist.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
