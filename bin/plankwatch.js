#!/usr/bin/env node
// Thin launcher: the compiled CLI does the work.
import '../dist/cli.js';
