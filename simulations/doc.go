// Package simulations runs `kubehtc sim`: a scenario (simulations/scenario) replayed once per scheduler
// profile on identical input, in fast mode (simulations/fast: virtual time, the real scheduling framework over
// an in-memory cluster, kubehtc's gang and fair-share plugins included, with the scenario's Queues and the
// gangs' PodGroups held in memory) or cluster mode (simulations/clustermode: the local cluster), then reported
// (simulations/report) and checked against the scenario's range file.
package simulations
