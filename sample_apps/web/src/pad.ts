// A drawing pad: black ink on white, read back as ink intensities in [0, 1] on a small grid.

export class InkPad {
  private drawing = false;
  private readonly ctx: CanvasRenderingContext2D;

  constructor(private readonly canvas: HTMLCanvasElement, onStroke: () => void) {
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    this.clear();
    const at = (e: PointerEvent) => {
      const r = canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
    };
    canvas.addEventListener('pointerdown', (e) => {
      this.drawing = true;
      const [x, y] = at(e);
      this.ctx.beginPath();
      this.ctx.moveTo(x, y);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.drawing) return;
      const [x, y] = at(e);
      this.ctx.lineTo(x, y);
      this.ctx.stroke();
    });
    const end = () => { if (this.drawing) { this.drawing = false; onStroke(); } };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointerleave', end);
  }

  clear(): void {
    const c = this.ctx;
    c.fillStyle = '#fff';
    c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    c.strokeStyle = '#000';
    c.lineWidth = this.canvas.width / 9;
    c.lineCap = 'round';
    c.lineJoin = 'round';
  }
}

/** Mean ink (1 - luminance) of each cell of an h x w grid over the canvas, row-major. */
export function downsample(canvas: HTMLCanvasElement, h: number, w: number): number[] {
  const { width, height } = canvas;
  const px = canvas.getContext('2d')!.getImageData(0, 0, width, height).data;
  const out = new Array<number>(h * w).fill(0);
  const counts = new Array<number>(h * w).fill(0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      const lum = (0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]) / 255;
      const cell = Math.min(h - 1, Math.floor((y * h) / height)) * w + Math.min(w - 1, Math.floor((x * w) / width));
      out[cell] += 1 - lum;
      counts[cell] += 1;
    }
  }
  return out.map((v, i) => v / counts[i]);
}
