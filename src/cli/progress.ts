// A progress bar on stderr for training: step, loss, learning rate, tokens/s, memory
// and ETA. Redraws in place on a terminal; elsewhere (logs, CI) prints a line per
// logging step so the output stays readable.
import type { StepInfo, TrainerCallback, TrainerControl } from '../train/callbacks.js';
import type { TrainerState } from '../train/state.js';

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

export class ProgressBar implements TrainerCallback {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  #tokens = 0;
  #seconds = 0;
  #steps = 0;
  #lastLine = '';

  constructor(write: (text: string) => void, tty: boolean) {
    this.#write = write;
    this.#tty = tty;
  }

  onStepEnd(state: TrainerState, _control: TrainerControl, step: StepInfo): void {
    this.#tokens += step.tokens;
    this.#seconds += step.seconds;
    this.#steps += 1;
    const rate = this.#tokens / this.#seconds;
    const stepsLeft = step.totalSteps - state.globalStep;
    const eta = (this.#seconds / this.#steps) * stepsLeft;
    const width = 24;
    const filled = Math.round((state.globalStep / step.totalSteps) * width);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
    this.#lastLine = `step ${state.globalStep}/${step.totalSteps} [${bar}] loss ${step.loss.toFixed(4)} lr ${step.learningRate.toExponential(2)} ${rate.toFixed(0)} tok/s mem ${rssMiB().toFixed(0)} MiB ETA ${clock(eta)}`;
    if (this.#tty) this.#write(`\r${this.#lastLine}\x1b[K`);
  }

  onLog(_state: TrainerState, logs: Record<string, number>): void {
    if (logs['eval_loss'] !== undefined) {
      this.#line(`eval step ${logs['step']}: eval_loss ${logs['eval_loss'].toFixed(4)} perplexity ${(logs['eval_perplexity'] ?? NaN).toFixed(2)}`);
    } else if (!this.#tty && logs['loss'] !== undefined) {
      this.#line(this.#lastLine);
    }
  }

  onSave(_state: TrainerState, dir: string): void {
    this.#line(`saved ${dir}`);
  }

  onTrainEnd(): void {
    if (this.#tty) this.#write('\n');
  }

  #line(text: string): void {
    this.#write(this.#tty ? `\r\x1b[K${text}\n` : `${text}\n`);
  }
}
