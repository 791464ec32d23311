import ArgumentParser
import KlingKit

/// `kling`: generate Kling 3.0 videos from the command line against KlingKit or a compatible provider.
@main
struct KlingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kling",
        abstract: "Generate Kling 3.0 videos with a KlingKit server or a compatible provider.",
        discussion: """
            Connection: --base-url or KLING_BASE_URL (default http://localhost:8080), --api-key or KLING_API_KEY,
            --dialect or KLING_DIALECT (market, crun, kling; default market). Kling access keys: --access-key and
            --secret-key (or KLING_ACCESS_KEY / KLING_SECRET_KEY) with --dialect kling.

            Exit codes: 0 done; 1 the task failed (nothing to download); 2 invalid request (fix it: nothing was
            created); 3 API or network error (the message says what to do); 4 timed out waiting (the task goes on:
            `kling wait ID`); 64 wrong command-line usage.
            """,
        subcommands: [
            GenerateCommand.self, StatusCommand.self, WaitCommand.self, DownloadCommand.self, CreditsCommand.self, QuoteCommand.self,
        ]
    )
}
