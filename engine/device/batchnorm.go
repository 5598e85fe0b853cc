package device

// BatchNormer is implemented by devices that run batch normalization with
// ghost batches (Hoffer et al. 2017): the rows of a batch are split into
// groups of ghost consecutive rows (the last group may be shorter), and each
// group is normalized with its own statistics, as if it were a batch of its
// own. ghost ≥ rows is ordinary batch normalization.
//
// It is a separate interface, not part of Device, because only models with
// batch normalization need it; the trainer refuses such a model on a device
// that lacks it.
type BatchNormer interface {
	// BatchNormTrain normalizes the rows×cols x group by group: with μ and
	// σ² the group's per-column mean and biased variance,
	// y = gamma·(x−μ)/√(σ²+eps) + beta. It saves μ and 1/√(σ²+eps) in mean
	// and invStd (one row of cols per group) for the backward pass, and,
	// group after group, updates the running statistics used for inference:
	// r = (1−momentum)·r + momentum·s, with the unbiased variance for runVar.
	BatchNormTrain(y, x, gamma, beta, mean, invStd, runMean, runVar Buffer, rows, cols, ghost int, momentum, eps float32)
	// BatchNormInfer normalizes with the running statistics.
	BatchNormInfer(y, x, gamma, beta, runMean, runVar Buffer, rows, cols int, eps float32)
	// BatchNormBackward takes dy and what BatchNormTrain saved, and writes
	// dx and the gradients of gamma and beta (summed over all groups).
	BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd Buffer, rows, cols, ghost int)
}

// GhostGroups is the number of ghost batches, and so of rows of saved
// statistics, that a batch of rows splits into; ghost ≤ 0 means one group.
func GhostGroups(rows, ghost int) int {
	if ghost <= 0 || ghost >= rows {
		return 1
	}
	return (rows + ghost - 1) / ghost
}

// ghostSize is the number of rows in each group.
func ghostSize(rows, ghost int) int {
	if ghost <= 0 || ghost >= rows {
		return max(rows, 1)
	}
	return ghost
}
