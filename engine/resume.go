package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"

	"github.com/batchlab/batchlab/engine/checkpoint"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Exact resume. A run is a pure function of its Config and its position:
// the weights, the optimizer's state (momentum velocities, or Adam's two
// moments with its step count) and batch-norm statistics are saved
// as tensors, and the data order of epoch e is data.Permutation(n, seed, e),
// so (epoch, step) says which samples come next. On the CPU a resumed run is
// therefore bit-identical to an uninterrupted one.

// position is where a run stands, with what the epoch under way has
// measured so far.
type position struct {
	Epoch           int     `json:"epoch"` // under way, 1-based
	Step            int     `json:"step"`  // steps of it done
	Seconds         float64 `json:"seconds"`
	TransferSeconds float64 `json:"transfer_seconds"`
	ComputeSeconds  float64 `json:"compute_seconds"`
	UpdateSeconds   float64 `json:"update_seconds"`
	H2DBytes        int64   `json:"h2d_bytes"`
	H2DCopies       int64   `json:"h2d_copies"`
	LR              float64 `json:"lr"`
}

// checkpointMeta is the JSON part of a checkpoint.
type checkpointMeta struct {
	Config       Config     `json:"config"`
	Data         *dataOfRun `json:"data"` // nil in checkpoints of older builds`
	Position     position   `json:"position"`
	TotalUpdates int        `json:"total_updates"`
	// OptimizerSteps is Adam's step count (Trainer.optimizerSteps).
	OptimizerSteps int          `json:"optimizer_steps,omitempty"`
	Completed      []EpochStats `json:"completed"`
}

// dataOfRun identifies the data a run trains and tests on: which set, how
// many of its samples, and the files they came from. A run resumed on other
// data would be another run.
type dataOfRun struct {
	Train datasetID `json:"train"`
	Test  datasetID `json:"test"`
}

type datasetID struct {
	Name    string         `json:"name"`
	Samples int            `json:"samples"`
	Files   []data.FileSum `json:"files,omitempty"`
}

func (t *Trainer) dataOfRun() *dataOfRun {
	id := func(ds *data.Dataset) datasetID { return datasetID{ds.Name, ds.Len(), ds.Files} }
	return &dataOfRun{id(t.train), id(t.test)}
}

// dataDiff says how the data of a checkpoint differs from the trainer's.
func dataDiff(saved, now *dataOfRun) string {
	if saved == nil {
		return "it does not record its data (written by an older batchlab)"
	}
	var diffs []string
	for _, p := range []struct {
		what       string
		saved, now datasetID
	}{{"training set", saved.Train, now.Train}, {"test set", saved.Test, now.Test}} {
		if p.saved.Name != p.now.Name || p.saved.Samples != p.now.Samples {
			diffs = append(diffs, fmt.Sprintf("the %s was %s with %d samples, now %s with %d (--data, --train-samples)", p.what, p.saved.Name, p.saved.Samples, p.now.Name, p.now.Samples))
		} else if !slices.Equal(p.saved.Files, p.now.Files) {
			diffs = append(diffs, fmt.Sprintf("the %s's files differ: %s, now %s (--data)", p.what, filesString(p.saved.Files), filesString(p.now.Files)))
		}
	}
	return strings.Join(diffs, "; ")
}

func filesString(fs []data.FileSum) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%s (%d bytes, sha256 %.12s…)", f.Name, f.Size, f.SHA256))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Tensor names beside the parameters.
const (
	velocityPrefix = "velocity/"
	// Adam's moments, by PyTorch's names.
	expAvgPrefix   = "exp_avg/"
	expAvgSqPrefix = "exp_avg_sq/"
	stepLossesName = "steps/losses"
	stepCorrectKey = "steps/correct"
)

// stateTensors lists what a checkpoint holds, with shapes; data is filled in
// only with read.
func (t *Trainer) stateTensors(read bool) ([]checkpoint.Tensor, error) {
	var out []checkpoint.Tensor
	add := func(name string, shape []int, b device.Buffer) error {
		tensor := checkpoint.Tensor{Name: name, Shape: shape}
		if read {
			tensor.Data = make([]float32, b.Len())
			if err := device.Download(t.d, tensor.Data, b); err != nil {
				return fmt.Errorf("checkpoint: reading %s: %w", name, err)
			}
		}
		out = append(out, tensor)
		return nil
	}
	for _, p := range t.params {
		for name, b := range t.paramState(p) {
			if err := add(name, p.Shape, b); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range t.Model.buffers() {
		if err := add(b.Name, []int{b.Buffer.Len()}, b.Buffer); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// paramState yields the checkpoint's tensors of one parameter, by name:
// its value and its optimizer state.
func (t *Trainer) paramState(p *param) iter.Seq2[string, device.Buffer] {
	return func(yield func(string, device.Buffer) bool) {
		if !yield(p.Name, p.Value) {
			return
		}
		if !t.config.Optimizer.IsAdam() {
			yield(velocityPrefix+p.Name, p.Velocity)
			return
		}
		if yield(expAvgPrefix+p.Name, p.Velocity) {
			yield(expAvgSqPrefix+p.Name, p.SecondMoment)
		}
	}
}

// Checkpoint captures the run at a step boundary: weights, optimizer state,
// statistics, the position and the epochs completed. It refuses a state
// past a non-finite loss (the guard is set) or with non-finite weights, so
// a diverged run never replaces the last good checkpoint; the refusal also
// stops the epoch under way after its step hook (Epoch).
func (t *Trainer) Checkpoint() (*checkpoint.Checkpoint, error) {
	if err := t.checkGuard(); err != nil {
		if errors.Is(err, ErrDiverged) {
			t.diverged = err
		}
		return nil, fmt.Errorf("%w; the checkpoint is not written", err)
	}
	tensors, err := t.stateTensors(true)
	if err != nil {
		return nil, err
	}
	for _, tensor := range tensors {
		if i := firstNonFinite(tensor.Data); i >= 0 {
			t.diverged = fmt.Errorf("%w: %s[%d] is %g after step %d of epoch %d (try a smaller learning rate)",
				ErrDiverged, tensor.Name, i, tensor.Data[i], t.pos.Step, max(t.pos.Epoch, 1))
			return nil, fmt.Errorf("%w; the checkpoint is not written", t.diverged)
		}
	}
	k := t.pos.Step
	losses := make([]float32, k)
	correct := make([]int32, k)
	if k > 0 {
		if err := device.Download(t.d, losses, t.stepLosses); err != nil {
			return nil, err
		}
		if err := device.Download(t.d, correct, t.stepCorrect); err != nil {
			return nil, err
		}
	}
	counts := make([]float32, k) // exact: a count is at most the batch size
	for i, c := range correct {
		counts[i] = float32(c)
	}
	tensors = append(tensors,
		checkpoint.Tensor{Name: stepLossesName, Shape: []int{k}, Data: losses},
		checkpoint.Tensor{Name: stepCorrectKey, Shape: []int{k}, Data: counts})
	pos := t.pos
	pos.Epoch = max(pos.Epoch, 1) // a run that has not started stands at epoch 1
	meta, err := json.Marshal(checkpointMeta{Config: t.config, Data: t.dataOfRun(), Position: pos, TotalUpdates: t.totalUpdates, OptimizerSteps: t.optimizerSteps, Completed: t.completed})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &checkpoint.Checkpoint{Meta: meta, Tensors: tensors}, nil
}

// Restore puts the trainer where a checkpoint of the same run left it. The
// run's settings must match, except that the epochs may grow.
func (t *Trainer) Restore(c *checkpoint.Checkpoint) error {
	var meta checkpointMeta
	if err := json.Unmarshal(c.Meta, &meta); err != nil {
		return fmt.Errorf("checkpoint metadata: %w", err)
	}
	if diff := configDiff(meta.Config, t.config); diff != "" {
		return fmt.Errorf("the checkpoint is of another run: %s", diff)
	}
	if diff := dataDiff(meta.Data, t.dataOfRun()); diff != "" {
		return fmt.Errorf("the checkpoint is of another run: %s", diff)
	}
	want, err := t.stateTensors(false)
	if err != nil {
		return err
	}
	k := meta.Position.Step
	if k < 0 || meta.Position.Epoch < 1 || meta.Position.Epoch > t.config.Epochs+1 || k > t.StepsIn(meta.Position.Epoch) {
		return fmt.Errorf("the checkpoint's position (epoch %d, step %d) is outside the run", meta.Position.Epoch, k)
	}
	if meta.OptimizerSteps < 0 {
		return fmt.Errorf("the checkpoint's optimizer step count %d is negative", meta.OptimizerSteps)
	}
	want = append(want, checkpoint.Tensor{Name: stepLossesName, Shape: []int{k}}, checkpoint.Tensor{Name: stepCorrectKey, Shape: []int{k}})
	if err := c.Match(want); err != nil {
		return err
	}
	byName := map[string]device.Buffer{}
	for _, p := range t.params {
		for name, b := range t.paramState(p) {
			byName[name] = b
		}
	}
	for _, b := range t.Model.buffers() {
		byName[b.Name] = b.Buffer
	}
	for name, b := range byName {
		if err := device.Upload(t.d, b, c.Tensor(name).Data); err != nil {
			return fmt.Errorf("restoring %s: %w", name, err)
		}
	}
	counts := c.Tensor(stepCorrectKey).Data
	correct := make([]int32, len(counts))
	for i, v := range counts {
		correct[i] = int32(v)
	}
	if k > 0 {
		if err := device.Upload(t.d, t.stepLosses, c.Tensor(stepLossesName).Data); err != nil {
			return err
		}
		if err := device.Upload(t.d, t.stepCorrect, correct); err != nil {
			return err
		}
	}
	t.pos, t.totalUpdates, t.optimizerSteps, t.completed = meta.Position, meta.TotalUpdates, meta.OptimizerSteps, meta.Completed
	t.d.Zero(t.guard) // the checkpoint is of finite steps only
	t.diverged = nil
	return t.d.Sync()
}

// Completed lists the epochs done so far, restored ones included.
func (t *Trainer) Completed() []EpochStats { return slices.Clone(t.completed) }

// configDiff says how two configs differ, ignoring Epochs; "" if they don't.
func configDiff(saved, now Config) string {
	saved.Epochs, now.Epochs = 0, 0
	a, _ := json.Marshal(saved)
	b, _ := json.Marshal(now)
	if string(a) == string(b) {
		return ""
	}
	var am, bm map[string]any
	json.Unmarshal(a, &am)
	json.Unmarshal(b, &bm)
	var diffs []string
	for k, v := range am {
		if w, ok := bm[k]; !ok || fmt.Sprint(v) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s was %v, now %v", k, v, bm[k]))
		}
	}
	for k, w := range bm {
		if _, ok := am[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s was unset, now %v", k, w))
		}
	}
	return strings.Join(diffs, "; ")
}

func firstNonFinite(xs []float32) int {
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// divergedTensor names the first tensor, in forward order, that holds a
// non-finite number, values before gradients: where the blow-up shows first
// once it is seen (by then a NaN loss has usually reached every layer
// through the update, so this names the earliest layer, not necessarily the
// cause).
func (t *Trainer) divergedTensor() string {
	for _, grads := range []bool{false, true} {
		values, err := t.Model.ReadParams(t.d, grads)
		if err != nil {
			return ""
		}
		for i, v := range values {
			if firstNonFinite(v) >= 0 {
				what := t.params[i].Name
				if grads {
					what += "'s gradient"
				}
				return what
			}
		}
	}
	return ""
}
