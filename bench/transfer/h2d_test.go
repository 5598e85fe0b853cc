package transfer

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Moving one batch to the default device (cuda in the CUDA build where a GPU
// is present, else the CPU, where a "transfer" is a copy in host memory),
// for every batch size from 1 to 8192 and every transfer strategy:
//
//	make bench-h2d > new.txt    # four batch sizes, -count 6 (benchstat's minimum)
//	benchstat -col /strategy new.txt
//
// Each iteration is Load (assemble, copy, and for uint8 and resident the
// device's gather and normalize) then Sync, so the timer never stops with
// work in flight. Besides ns/op and MB/s it reports ns/sample, GB/s and
// transfer-share: the batch's transfer time over that plus one training
// step of the reference MLP 784-512-512-10 at the same batch size (omitted
// where the device cannot train yet).

// h2dData is MNIST-shaped random data, as many samples as MNIST's training set.
var h2dData = sync.OnceValue(func() *data.Dataset { return data.Random(60000, 28, 28, 10, 1) })

func BenchmarkH2D(b *testing.B) {
	d, err := device.Open("")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, batch := range PowersOfTwo(8192) {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			step := h2dStepSeconds(b, d, batch)
			for _, m := range data.Modes() {
				b.Run("strategy="+string(m), func(b *testing.B) {
					for _, dt := range []device.DType{device.Float32, device.Uint8} {
						if m == data.Resident && dt != device.Uint8 {
							continue
						}
						b.Run("dtype="+dt.String(), func(b *testing.B) {
							benchLoad(b, d, data.Strategy{Mode: m, DType: dt}, batch, step)
						})
					}
				})
			}
		})
	}
}

func benchLoad(b *testing.B, d device.Device, s data.Strategy, batch int, step float64) {
	ds := h2dData()
	l, err := data.NewLoader(d, ds, batch, s)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	order := data.Permutation(ds.Len(), 1, batch)
	bytes, _ := s.BatchTraffic(batch, ds.Features())
	b.SetBytes(bytes)
	pos := 0
	for b.Loop() {
		if pos+batch > len(order) {
			pos = 0
		}
		if _, _, err := l.Load(order[pos : pos+batch]); err != nil {
			b.Fatal(err)
		}
		pos += batch
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(per*1e9/float64(batch), "ns/sample")
	b.ReportMetric(float64(bytes)/per/1e9, "GB/s")
	if step > 0 {
		b.ReportMetric(per/(per+step), "transfer-share")
	}
}

// h2dSteps caches, per batch size, the seconds of one training step
// (forward, backward, update) of the reference MLP: 0 where the device
// cannot train.
var h2dSteps = map[int]float64{}

// h2dStepSeconds measures a step by the trainer's own device events, over
// an epoch of two steps of random data.
func h2dStepSeconds(b *testing.B, d device.Device, batch int) float64 {
	if t, ok := h2dSteps[batch]; ok {
		return t
	}
	h2dSteps[batch] = 0
	cfg := engine.DefaultConfig()
	cfg.Batch, cfg.EvalBatch = batch, 1
	tr, err := engine.NewTrainer(d, cfg, h2dData().Subset(2*batch), h2dData().Subset(1))
	if err != nil {
		b.Logf("no transfer-share at batch %d: %v", batch, err)
		return 0
	}
	e, err := tr.Epoch(context.Background(), 1, nil)
	if err != nil {
		b.Logf("no transfer-share at batch %d: %v", batch, err)
		return 0
	}
	h2dSteps[batch] = (e.ComputeSeconds + e.UpdateSeconds) / float64(e.Updates)
	return h2dSteps[batch]
}
