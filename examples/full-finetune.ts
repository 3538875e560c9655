// The seed's "Full Fine-Tuning with Hugging Face Transformers", line by line in ftune.
// Python: model = AutoModelForCausalLM.from_pretrained(model_name) ... trainer.train()
import { AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, loadDataset } from '../src/index.js';
import { DATASET, MODEL } from './data.js';

const modelName = MODEL; // "meta-llama/Llama-2-7b-hf" in the seed
const model = AutoModelForCausalLM.fromPretrained(modelName);
const tokenizer = await AutoTokenizer.fromPretrained(modelName);

// Prepare your custom dataset here
const trainDataset = loadDataset(DATASET, tokenizer, { maxLength: 256 }).slice(0, 64);

const trainingArgs = TrainingArguments({
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 8,
  numTrainEpochs: 2,
  bf16: true, // fp16=True in the seed: on CPUs bf16 is the fast half-precision
  outputDir: 'examples/output/llama-finetuned',
  saveTotalLimit: 2,
});

const trainer = new Trainer({
  model,
  args: trainingArgs,
  trainDataset,
  tokenizer,
});

const result = trainer.train();
trainer.saveModel();
process.stderr.write(`full fine-tuning: ${result.globalStep} steps, train loss ${result.trainingLoss.toFixed(4)} -> ${trainingArgs.outputDir}\n`);
