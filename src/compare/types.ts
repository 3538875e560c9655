// What a comparison measures: one MethodResult per method (written by the method's
// child process) and the CompareReport that report.json holds.

/** Measured results of one method (field names are report.json's, in snake_case there). */
export interface MethodResult {
  method: 'full' | 'lora' | 'qlora';
  trainableParams: number;
  /** All parameters; a 4-bit weight counts as the weights it stands for (PEFT's rule). */
  totalParams: number;
  /** Peak resident set of the method's process, measured right after training. */
  peakRssMiB: number;
  /** Peak of ftune's own tensor accounting (weights, grads, optimizer, activations). */
  accountedPeakMiB: number;
  /** Training tokens (padding included) per second of training wall time. */
  tokensPerSecond: number;
  wallSeconds: number;
  steps: number;
  /** Mean training loss over all steps. */
  trainLoss: number;
  /** The last logged training loss. */
  finalTrainLoss: number;
  evalLossBefore: number | null;
  evalLoss: number | null;
  evalPerplexity: number | null;
  exactMatch: { accuracy: number; correct: number; rows: number } | null;
  samples: Array<{ prompt: string; reference: string; generated: string; match: boolean }>;
  /** Bytes of the saved model (full) or adapter (lora, qlora), tokenizer files excluded. */
  sizeOnDiskBytes: number;
  genTokensPerSecondUnmerged: number;
  /** Adapters only: after mergeAndUnload (a 4-bit base dequantized to f32 first). */
  genTokensPerSecondMerged: number | null;
  lossCurve: Array<{ step: number; loss: number }>;
  evalCurve: Array<{ step: number; loss: number }>;
  outputDir: string;
}

/** A relative eval-loss gap between two methods, with the explanation the report states. */
export interface QualityGap {
  a: string;
  b: string;
  /** (loss_a - loss_b) / loss_b. */
  relative: number;
  withinTolerance: boolean;
  explanation: string;
}

export interface CompareReport {
  model: string;
  data: string;
  evalData: string | null;
  settings: Record<string, string | number | boolean>;
  methods: MethodResult[];
  gaps: QualityGap[];
  /** The eval-loss tolerance of the gap check (0.05 = 5%). */
  tolerance: number;
  createdAt: string;
}
