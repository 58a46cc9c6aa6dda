// Type the start of some Python code and let the on-device language model continue it.
// The model is an actor: loading and generation run off the main actor; the completion streams in
// token by token and Stop cancels the generating task.
import Pycode
import SwiftUI

struct CompletionView: View {
  @State private var prompt = "def main("
  @State private var completion = ""
  @State private var temperature = 0.0
  @State private var status = "loading..."
  @State private var model: Pycode?
  @State private var generation: Task<Void, Never>?

  var body: some View {
    VStack(alignment: .leading, spacing: 12) {
      TextEditor(text: $prompt).font(.system(.body, design: .monospaced)).frame(height: 120).border(Color.gray)
      HStack {
        Text("temperature \(temperature, specifier: "%.1f")")
        Slider(value: $temperature, in: 0...1.5, step: 0.1)
      }
      HStack {
        Button("Complete") { complete() }.disabled(model == nil || generation != nil)
        Button("Stop") { generation?.cancel() }.disabled(generation == nil)
      }
      ScrollView { Text(prompt + completion).font(.system(.body, design: .monospaced)) }
      Text(status).font(.footnote).foregroundColor(.secondary)
    }
    .padding()
    .task { await load() }
    .onDisappear { generation?.cancel() }
  }

  private func load() async {
    do {
      let m = try await Pycode.load()
      let report = try await m.selfTest()
      model = m
      status = "self-test \(report.passed ? "passed" : "FAILED"): max |diff| \(report.maxAbsDiff)"
    } catch { status = "not available: \(error)" }
  }

  private func complete() {
    guard let model else { return }
    let options = SamplingOptions(maxNewTokens: 48, temperature: temperature, topK: 20, seed: 1)
    completion = ""
    generation = Task {
      do {
        for try await piece in model.stream(prompt, options: options) { completion += piece }
        if Task.isCancelled { completion += " [stopped]" }
      } catch is CancellationError {
        completion += " [stopped]"
      } catch {
        completion += "\nerror: \(error)"
      }
      generation = nil
    }
  }
}
