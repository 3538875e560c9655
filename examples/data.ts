// Where the examples find a model and a dataset: the shared test data (FTUNE_TEST_DATA,
// default ../shared/data): stories260K-hf and the Alpaca demo set. Point FTUNE_MODEL at
// any Llama-family directory to run them on a real model.
import { resolve } from 'node:path';

const DATA = resolve(process.env['FTUNE_TEST_DATA'] ?? '../shared/data');
export const MODEL = process.env['FTUNE_MODEL'] ?? `${DATA}/hf_models/stories260K-hf`;
export const DATASET = process.env['FTUNE_DATASET'] ?? `${DATA}/datasets/alpaca_en_demo.json`;
