// The benchmarks' free-port helper, shared with the tests that start a broker or a daemon.
export { freePort } from '../../src/bench/ports.js';
