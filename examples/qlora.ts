// The seed's "QLoRA with Hugging Face Transformers and bitsandbytes", line by line in ftune.
// Python: BitsAndBytesConfig(load_in_4bit=True, ...) -> from_pretrained(quantization_config=...)
import { AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, LoraConfig, Trainer, TrainingArguments, getPeftModel, loadDataset } from '../src/index.js';
import { DATASET, MODEL } from './data.js';

const modelName = MODEL; // "meta-llama/Llama-2-7b-hf" in the seed
const bnbConfig = BitsAndBytesConfig({
  loadIn4bit: true,
  bnb4bitComputeDtype: 'bfloat16', // "float16" in the seed: on CPUs bf16 is the fast half-precision
});
const model = AutoModelForCausalLM.fromPretrained(modelName, {
  quantizationConfig: bnbConfig,
  // device_map="auto": ftune runs on the CPU
});
const tokenizer = await AutoTokenizer.fromPretrained(modelName);

const loraConfig = LoraConfig({
  r: 8,
  loraAlpha: 32,
  targetModules: ['q_proj', 'v_proj'],
  loraDropout: 0.05,
});
const peftModel = getPeftModel(model, loraConfig);
process.stderr.write(`${peftModel.printTrainableParameters()}\n`);

const trainDataset = loadDataset(DATASET, tokenizer, { maxLength: 256 }).slice(0, 64);

const trainingArgs = TrainingArguments({
  perDeviceTrainBatchSize: 2,
  numTrainEpochs: 2,
  learningRate: 2e-4,
  bf16: true, // fp16=True in the seed
  outputDir: 'examples/output/llama2-qlora',
  saveTotalLimit: 2,
});

const trainer = new Trainer({
  model: peftModel,
  args: trainingArgs,
  trainDataset,
  tokenizer,
});

const result = trainer.train();
trainer.saveModel(); // a normal PEFT adapter: it also loads onto the unquantized base
process.stderr.write(`QLoRA: ${result.globalStep} steps, train loss ${result.trainingLoss.toFixed(4)} -> ${trainingArgs.outputDir}\n`);
