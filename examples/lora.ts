// The seed's "Training Llama 3 with LoRA using PEFT", line by line in ftune.
// Python: model = get_peft_model(model, lora_config) ... trainer.train()
import { AutoModelForCausalLM, AutoTokenizer, LoraConfig, Trainer, TrainingArguments, getPeftModel, loadDataset } from '../src/index.js';
import { DATASET, MODEL } from './data.js';

const modelName = MODEL; // "meta-llama/Llama-3-8b-hf" in the seed
let model = AutoModelForCausalLM.fromPretrained(modelName);
const tokenizer = await AutoTokenizer.fromPretrained(modelName);

const loraConfig = LoraConfig({
  r: 8, // Low-rank dimension
  loraAlpha: 16, // Scaling factor
  targetModules: ['q_proj', 'v_proj'], // Target attention projections
  loraDropout: 0.05,
  bias: 'none',
});

const peftModel = getPeftModel(model, loraConfig);
process.stderr.write(`${peftModel.printTrainableParameters()}\n`);

const trainDataset = loadDataset(DATASET, tokenizer, { maxLength: 256 }).slice(0, 64); // Your dataset

const trainingArgs = TrainingArguments({
  perDeviceTrainBatchSize: 4,
  numTrainEpochs: 2,
  learningRate: 2e-4,
  bf16: true, // fp16=True in the seed
  outputDir: 'examples/output/llama3-lora',
  saveTotalLimit: 2,
});

const trainer = new Trainer({
  model: peftModel,
  args: trainingArgs,
  trainDataset,
  tokenizer,
});

const result = trainer.train();
trainer.saveModel(); // a PEFT adapter directory: adapter_config.json + adapter_model.safetensors
model = peftModel.mergeAndUnload(); // merged back into the base weights for serving
process.stderr.write(`LoRA: ${result.globalStep} steps, train loss ${result.trainingLoss.toFixed(4)} -> ${trainingArgs.outputDir}\n`);
