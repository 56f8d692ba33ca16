"""From scratch: linear and logistic regression (closed form and gradient descent) and a
sigmoid network trained by hand-written backpropagation (Nielsen, "Neural Networks and Deep
Learning", chapters 1–2), with the small real data sets they are taught on. Independent of the
colourization code."""
