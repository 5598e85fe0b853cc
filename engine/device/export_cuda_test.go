//go:build !cpu

package device

// SetGridCap caps d's grid-stride launches at n blocks, so that the tests
// make every grid-stride loop go round many times on small inputs.
func SetGridCap(d *CUDA, n int) { d.gridCap = n }
