package main

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine"
)

func noiseCommand() *cli.Command {
	def := engine.DefaultConfig()
	return &cli.Command{
		Name:  "noise",
		Usage: "measure the gradient noise scale B_simple during training (McCandlish et al. 2018)",
		Description: "Trains the MLP and, at points during training, estimates |G|² and tr(Σ) from the\n" +
			"gradient norms of a small and a big batch with the unbiased two-batch estimators,\n" +
			"averaged over --noise-pairs pairs, and reports B_simple = tr(Σ)/|G|²: about the\n" +
			"batch size beyond which larger batches stop cutting the number of steps.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab noise --epochs 2 --batch 64",
			"batchlab noise --batch 32 --noise-big 2048 --noise-pairs 20 --points 8 --json"),
		Flags: append(modelFlags(def),
			&cli.IntFlag{Name: "noise-small", Usage: "the small batch of the estimator", DefaultText: "--batch"},
			noiseBigFlag(noiseBig), noisePairsFlag(noisePairs),
			&cli.IntFlag{Name: "points", Usage: "estimates per epoch", Value: 4},
			&cli.BoolFlag{Name: "json", Usage: "print the estimates as JSON"},
			traceFlag(), cpuProfileFlag(),
		),
		Action: runNoise,
	}
}

// noisePoint is one line of `batchlab noise`.
type noisePoint struct {
	Epoch      int     `json:"epoch"`
	Updates    int     `json:"updates"`
	GradSq     float64 `json:"grad_sq"`
	TraceSigma float64 `json:"trace_sigma"`
	BSimple    float64 `json:"b_simple"`
}

func runNoise(c *cli.Context) error {
	tr, s, err := newTrainerFromFlags(c)
	if err != nil {
		return err
	}
	defer s.close()
	small := c.Int("noise-small")
	if !c.IsSet("noise-small") {
		small = tr.Config().Batch
	}
	points, measurements := c.Int("points"), c.Int("noise-pairs")
	if points <= 0 || measurements <= 0 {
		return fmt.Errorf("--points and --noise-pairs must be positive, got %d and %d", points, measurements)
	}
	tr.SetTrace(s.prof.tl)
	meter, err := engine.NewNoiseMeter(tr, small, c.Int("noise-big"), tr.Config().Seed)
	if err != nil {
		return err
	}
	defer meter.Close()
	w := c.App.Writer
	jsonOut := c.Bool("json")
	if !jsonOut {
		fmt.Fprintf(w, "model %s, batch %d, lr %g; estimator batches %d and %d, %d pairs per estimate\n\n",
			tr.Model, tr.Config().Batch, tr.Config().ScaledLR(), small, c.Int("noise-big"), measurements)
		fmt.Fprintf(w, "%5s  %7s  %10s  %10s  %9s\n", "epoch", "updates", "|G|²", "tr(Σ)", "B_simple")
	}
	var all []noisePoint
	var measureErr error
	measure := func(epoch int) {
		if measureErr != nil {
			return
		}
		var e engine.NoiseEstimate
		if e, measureErr = meter.Sample(measurements); measureErr != nil {
			return
		}
		p := noisePoint{epoch, tr.TotalUpdates(), e.GradSq(), e.TraceSigma(), e.BSimple()}
		all = append(all, p)
		if !jsonOut {
			fmt.Fprintf(w, "%5d  %7d  %10.4g  %10.4g  %9.0f\n", p.Epoch, p.Updates, p.GradSq, p.TraceSigma, p.BSimple)
		}
	}
	measure(0) // at initialization
	_, err = tr.Run(c.Context, engine.Hooks{Epoch: runOf(c).epoch, Step: func(epoch, done, total int) {
		if done%max(1, total/points) == 0 {
			measure(epoch)
		}
	}})
	if err == nil {
		err = measureErr
	}
	if perr := s.stopProfiling(); err == nil {
		err = perr
	}
	runOf(c).result(all)
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(map[string]any{"config": tr.Config(), "small": small, "big": c.Int("noise-big"), "estimates": all}); encErr != nil {
			return encErr
		}
	} else if n := len(all); n > 0 && !math.IsInf(all[n-1].BSimple, 0) {
		fmt.Fprintf(w, "\nB_simple ≈ %.0f at the end: below it, doubling the batch nearly halves the steps to a\ngiven loss; well above it, a larger batch mostly costs more samples.\n", all[n-1].BSimple)
	}
	return err
}

// noiseBigFlag and noisePairsFlag are the gradient noise estimator's
// settings, the same in noise, advise and grid; noise and advise, which
// measure at a few points, default to noiseBig and noisePairs.
func noiseBigFlag(value int) cli.Flag {
	return &cli.IntFlag{Name: "noise-big", Usage: "the big batch of the noise estimator", Value: value}
}

func noisePairsFlag(value int) cli.Flag {
	return &cli.IntFlag{Name: "noise-pairs", Usage: "pairs of gradients (small and big batch) averaged per noise estimate", Value: value}
}

const noiseBig, noisePairs = 1024, 10
