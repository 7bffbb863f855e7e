// Moved to src/buffers/scratch.ts (buffer memory is not a codec). This re-export stays only until the
// restructured relay, client and link modules import it from there; then it goes.
export { Scratch } from '../buffers/scratch.js';
