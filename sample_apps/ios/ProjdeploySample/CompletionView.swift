// Type the start of some Python code and let the on-device language model continue it.
import Pycode
import SwiftUI

struct CompletionView: View {
  @State private var prompt = "def main("
  @State private var completion = ""
  @State private var temperature = 0.0
  @State private var status = "loading..."
  @State private var model: Pycode?

  var body: some View {
    VStack(alignment: .leading, spacing: 12) {
      TextEditor(text: $prompt).font(.system(.body, design: .monospaced)).frame(height: 120).border(Color.gray)
      HStack {
        Text("temperature \(temperature, specifier: "%.1f")")
        Slider(value: $temperature, in: 0...1.5, step: 0.1)
      }
      Button("Complete") { complete() }.disabled(model == nil)
      ScrollView { Text(prompt + completion).font(.system(.body, design: .monospaced)) }
      Text(status).font(.footnote).foregroundColor(.secondary)
    }
    .padding()
    .task { load() }
  }

  private func load() {
    do {
      let m = try Pycode.load()
      let report = try m.selfTest()
      model = m
      status = "self-test \(report.passed ? "passed" : "FAILED"): max |diff| \(report.maxAbsDiff)"
    } catch { status = "not available: \(error)" }
  }

  private func complete() {
    guard let model else { return }
    let options = SamplingOptions(maxNewTokens: 48, temperature: temperature, topK: 20, seed: 1)
    do { completion = try model.complete(prompt, options: options) } catch { completion = " error: \(error)" }
  }
}
