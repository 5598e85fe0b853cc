package study

import "strings"

// The papers the findings test, in full, for the report's references; a
// finding's Source names them as "Author et al. year", split on "; ".
var references = []reference{
	{"Goyal et al. 2017", "Priya Goyal, Piotr Dollár, Ross Girshick, Pieter Noordhuis, Lukasz Wesolowski, Aapo Kyrola, Andrew Tulloch, Yangqing Jia and Kaiming He. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. arXiv:1706.02677, 2017."},
	{"Hoffer et al. 2017", "Elad Hoffer, Itay Hubara and Daniel Soudry. Train longer, generalize better: closing the generalization gap in large batch training of neural networks. Advances in Neural Information Processing Systems 30 (NIPS 2017). arXiv:1705.08741."},
	{"Keskar et al. 2017", "Nitish Shirish Keskar, Dheevatsa Mudigere, Jorge Nocedal, Mikhail Smelyanskiy and Ping Tak Peter Tang. On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima. International Conference on Learning Representations (ICLR 2017). arXiv:1609.04836."},
	{"McCandlish et al. 2018", "Sam McCandlish, Jared Kaplan, Dario Amodei and the OpenAI Dota Team. An Empirical Model of Large-Batch Training. arXiv:1812.06162, 2018."},
	{"Shallue et al. 2019", "Christopher J. Shallue, Jaehoon Lee, Joseph Antognini, Jascha Sohl-Dickstein, Roy Frostig and George E. Dahl. Measuring the Effects of Data Parallelism on Neural Network Training. Journal of Machine Learning Research 20(112):1–49, 2019. arXiv:1811.03600."},
	{"Smith et al. 2018", "Samuel L. Smith, Pieter-Jan Kindermans, Chris Ying and Quoc V. Le. Don't Decay the Learning Rate, Increase the Batch Size. International Conference on Learning Representations (ICLR 2018). arXiv:1711.00489."},
}

type reference struct{ Short, Full string }

// Anchor is the reference's id on the page: "ref-goyal-2017".
func (r reference) Anchor() string {
	author, year, _ := strings.Cut(r.Short, " et al. ")
	return "ref-" + strings.ToLower(author) + "-" + year
}

// cite is one name of a finding's source, linked where it is a reference.
type cite struct{ Text, Anchor string }

func citations(source string) []cite {
	var cs []cite
	for _, s := range strings.Split(source, ";") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		c := cite{Text: s}
		for _, r := range references {
			if r.Short == s {
				c.Anchor = r.Anchor()
			}
		}
		cs = append(cs, c)
	}
	return cs
}
