package data

import (
	"fmt"
	"math/rand/v2"
)

// Random returns n samples of rows×cols uniformly random pixels with
// uniformly random labels below classes, from a PCG stream of seed: data
// shaped like a real set, for measuring what moving it costs (which does not
// depend on the content).
func Random(n, rows, cols, classes int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 0xda7a))
	d := &Dataset{
		Name:   fmt.Sprintf("random-%dx%dx%d", n, rows, cols),
		Images: make([]uint8, n*rows*cols), Labels: make([]uint8, n),
		Rows: rows, Cols: cols, Classes: classes,
	}
	for i := range d.Images {
		d.Images[i] = uint8(r.Uint32())
	}
	for i := range d.Labels {
		d.Labels[i] = uint8(r.IntN(classes))
	}
	return d
}
