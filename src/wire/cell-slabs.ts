// Moved to src/buffers/cell-slabs.ts (buffer memory is not a codec). This re-export stays only until the
// restructured relay, client and link modules import it from there; then it goes.
export { CellSlabs } from '../buffers/cell-slabs.js';
