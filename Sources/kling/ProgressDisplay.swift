import Foundation
import KlingKit

/// Shows a task's progress: on a terminal a live bar with state, percentage and elapsed time, redrawn twice a
/// second; otherwise one plain line whenever the state or progress changes.
actor ProgressDisplay {
    private let taskID: String
    private let interactive: Bool
    private let start = ContinuousClock.now
    private var state = "queued"
    private var progress: Int?
    private var lastLine: String?
    private var ticker: Task<Void, Never>?

    init(taskID: String, interactive: Bool = Terminal.isInteractive) {
        self.taskID = taskID
        self.interactive = interactive
    }

    /// Starts redrawing (terminal only).
    func begin() {
        guard interactive, ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                await self?.redraw()
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Takes a new observation of the task.
    func update(_ task: KlingTask) {
        state = task.state.rawValue
        if let value = task.progress { progress = value } else if task.state == .succeeded { progress = 100 }
        if interactive {
            redraw()
        } else {
            let line = "\(taskID): \(state)\(progress.map { " \($0)%" } ?? "")"
            if line != lastLine {
                Terminal.error("\(line) (\(Terminal.clock(ContinuousClock.now - start)) elapsed)")
                lastLine = line
            }
        }
    }

    /// Stops redrawing and leaves the last bar on its own line.
    func end() {
        ticker?.cancel()
        ticker = nil
        if interactive {
            redraw()
            Terminal.write("\n")
        }
    }

    private func redraw() {
        let width = 24
        let filled = min(width, max(0, (progress ?? 0) * width / 100))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let percent = progress.map { String(format: "%3d%%", $0) } ?? "  -%"
        Terminal.write("\r\u{1B}[2K[\(bar)] \(percent)  \(state)  \(Terminal.clock(ContinuousClock.now - start))  \(taskID)")
    }
}

/// Follows a task to its end with a progress display; returns the final task.
func follow(_ client: KlingClient, taskID: String) async throws(KlingError) -> KlingTask {
    let display = ProgressDisplay(taskID: taskID)
    await display.begin()
    var last: KlingTask?
    do {
        for try await update in client.wait(for: taskID) {
            await display.update(update.task)
            last = update.task
        }
    } catch {
        await display.end()
        throw (error as? KlingError) ?? KlingError(.transport, message: "\(error)", taskID: taskID)
    }
    await display.end()
    guard let last else { throw KlingError(.timeout, message: "the task did not finish", taskID: taskID) }
    return last
}

/// Prints a finished task's outcome; the exit code for a failed one.
func reportFinished(_ task: KlingTask) -> Int32 {
    if task.state == .failed {
        let failure = task.failure.map { "\($0.message)\($0.code.map { " (code \($0))" } ?? "")" } ?? "no reason given"
        Terminal.error("error: task \(task.id) failed: \(failure)")
        Terminal.error("hint: nothing to download; KlingKit refunds failed tasks. Fix what the message names and generate again.")
        return 1
    }
    return 0
}
