// Compile a Solidity standard-JSON input with solc-js (WebAssembly, offline).
// stdin: {"input": <standard JSON>, "remappings": [[prefix, target], ...], "roots": {prefix: dir}}
// stdout: solc's standard-JSON output.
// Imports resolve through the remappings, then against each root folder (node_modules, repo).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const remappings = request.remappings || [];
const roots = request.roots || {};

function findImports(importPath) {
  let p = importPath;
  for (const [prefix, target] of remappings) {
    if (p.startsWith(prefix)) { p = target + p.slice(prefix.length); break; }
  }
  for (const [prefix, dir] of Object.entries(roots)) {
    if (p.startsWith(prefix)) {
      const file = path.join(dir, p.slice(prefix.length));
      if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
    }
  }
  return { error: 'File not found: ' + importPath };
}

const output = solc.compile(JSON.stringify(request.input), { import: findImports });
process.stdout.write(output);
