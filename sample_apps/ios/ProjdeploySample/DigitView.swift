// Draw with a finger; the strokes are rasterised to the model's 8x8 grid of ink intensities in [0, 1].
// Loading and classification are awaited on the model actor (off the main actor); errors are shown.
import DigitsCls
import SwiftUI

struct DigitView: View {
  @State private var strokes: [[CGPoint]] = []
  @State private var result = "draw a digit"
  @State private var status = "loading..."
  @State private var model: DigitsCls?
  private let side: CGFloat = 240

  var body: some View {
    VStack(spacing: 16) {
      Canvas { ctx, _ in
        for s in strokes where s.count > 1 {
          var p = Path()
          p.addLines(s)
          ctx.stroke(p, with: .color(.black), style: StrokeStyle(lineWidth: side / 9, lineCap: .round, lineJoin: .round))
        }
      }
      .frame(width: side, height: side)
      .background(Color.white)
      .border(Color.gray)
      .gesture(DragGesture(minimumDistance: 0)
        .onChanged { g in
          if g.translation == .zero { strokes.append([]) }
          strokes[strokes.count - 1].append(g.location)
        }
        .onEnded { _ in classify() })
      Text(result).font(.title)
      Button("Clear") { strokes = []; result = "draw a digit" }
      Text(status).font(.footnote).foregroundColor(.secondary)
    }
    .task { await load() }
  }

  private func load() async {
    do {
      let m = try await DigitsCls.load()
      let report = try await m.selfTest()
      model = m
      status = "self-test \(report.passed ? "passed" : "FAILED"): max |diff| \(report.maxAbsDiff)"
    } catch { status = "not available: \(error)" }
  }

  /// Mean ink of each cell of the model's grid (the same rasterisation as the web sample).
  private func pixels() -> [Double] {
    let (h, w) = (DigitsCls.imageShape[0], DigitsCls.imageShape[1])
    let renderer = ImageRenderer(content: Canvas { ctx, _ in
      ctx.fill(Path(CGRect(x: 0, y: 0, width: side, height: side)), with: .color(.white))
      for s in strokes where s.count > 1 {
        var p = Path()
        p.addLines(s)
        ctx.stroke(p, with: .color(.black), style: StrokeStyle(lineWidth: side / 9, lineCap: .round, lineJoin: .round))
      }
    }.frame(width: side, height: side))
    guard let cg = renderer.cgImage, let data = cg.dataProvider?.data as Data? else { return [] }
    let bpr = cg.bytesPerRow, bpp = cg.bitsPerPixel / 8
    var out = [Double](repeating: 0, count: h * w), counts = [Double](repeating: 0, count: h * w)
    for y in 0..<cg.height {
      for x in 0..<cg.width {
        let i = y * bpr + x * bpp
        let lum = (0.299 * Double(data[i]) + 0.587 * Double(data[i + 1]) + 0.114 * Double(data[i + 2])) / 255
        let cell = min(h - 1, y * h / cg.height) * w + min(w - 1, x * w / cg.width)
        out[cell] += 1 - lum
        counts[cell] += 1
      }
    }
    return zip(out, counts).map { $0 / max($1, 1) }
  }

  private func classify() {
    guard let model else { return }
    let input = pixels()
    Task {  // the model actor runs inference off the main actor
      do {
        let r = try await model.classifyImage(input)
        result = "\(r.label)  (\(Int(100 * r.probabilities[r.index]))%)"
      } catch { result = "error: \(error)" }
    }
  }
}
