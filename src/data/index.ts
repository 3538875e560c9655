// The data pipeline's public API: read rows, detect the format, template and mask,
// split, pack and batch (docs/data-formats.md).
export { readRows, type LocatedRow, type Row } from './read.js';
export { DATA_FORMATS, detectFormat, toSample, type DataFormat, type Sample } from './formats.js';
export { IGNORE_INDEX, alpacaPrompt } from './template.js';
export {
  DATA_DEFAULTS, loadDataset, padIdOf, tokenizeRows, type DataOptions, type Example,
} from './dataset.js';
export {
  DataLoader, collate, packExamples, splitValidation, type Batch, type DataLoaderOptions,
} from './batch.js';
