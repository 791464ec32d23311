// FFmpeg's libavformat (Debian's libavformat-dev), used to join rendered pieces into one MP4 without a process.
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>

// AVERROR_EOF is a macro Swift cannot import.
static inline int cffmpeg_averror_eof(void) { return AVERROR_EOF; }
