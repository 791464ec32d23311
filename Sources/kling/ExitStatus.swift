import ArgumentParser
import Foundation
import KlingKit

/// The documented exit codes of `kling`.
enum ExitStatus {
    /// The task failed or was cancelled: there is no video.
    static let taskFailed = ExitCode(1)
    /// The request is invalid (locally or by the provider): nothing was created.
    static let invalidRequest = ExitCode(2)
    /// The provider answered an error, or the network failed.
    static let apiError = ExitCode(3)
    /// Waiting hit its ceiling; the task is still running.
    static let timeout = ExitCode(4)

    /// Prints `error` and what to do about it on stderr, and returns the exit code for it.
    static func report(_ error: KlingError, taskID: String? = nil) -> ExitCode {
        Terminal.error("error: \(error)")
        for issue in error.issues where error.issues.count > 1 { Terminal.error("  \(issue)") }
        Terminal.error(hint(for: error, taskID: taskID ?? error.taskID))
        switch error.kind {
        case .validation: return invalidRequest
        case .timeout: return timeout
        default: return apiError
        }
    }

    /// What to do about an error, in one line.
    static func hint(for error: KlingError, taskID: String?) -> String {
        let resume = taskID.map { " (task \($0): `kling status \($0)`)" } ?? ""
        switch error.kind {
        case .validation:
            return error.httpStatus == nil
                ? "hint: fix the fields named above and run again; nothing was sent."
                : "hint: the provider refused the request; fix the fields named above and run again; nothing was charged."
        case .timeout:
            return "hint: the task is still running; resume with `kling wait \(taskID ?? "ID")` (or raise --timeout)."
        case .unsupported:
            return "hint: use an API key (--api-key or KLING_API_KEY) for this command, or another dialect."
        case .transport:
            return "hint: check --base-url / KLING_BASE_URL and that the server is reachable\(resume)."
        case .download:
            return "hint: run `kling download \(taskID ?? "ID")` again: it resumes where it stopped."
        default:
            break
        }
        switch error.code {
        case "401", "1001", "1002", "1003", "1004":
            return "hint: check the key (--api-key or KLING_API_KEY); create one with `kling-server keys create --account NAME`."
        case "402", "1102":
            return "hint: the balance is too low (`kling credits`); add credits with `kling-server credits add NAME N`."
        case "404", "1203":
            return "hint: check the task id; tasks are visible only to keys of the account that created them."
        case "429", "1302", "1303":
            return "hint: too many requests or active tasks; wait a little (or for running tasks to finish) and try again."
        case "455", "5001":
            return "hint: the service is in maintenance; try again later."
        case "505", "1103":
            return "hint: that feature is switched off on this server; leave it out or ask the operator."
        default:
            return "hint: try again later\(resume); if it persists, report the request id above."
        }
    }
}
