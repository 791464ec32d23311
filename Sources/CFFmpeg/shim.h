// FFmpeg's libraries (Debian's libavformat-dev and libavfilter-dev): libavformat joins rendered pieces into one MP4
// and probes results; libavfilter and libavcodec render the preview's audio track, all without a process.
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>

// AVERROR_EOF and AVERROR(EAGAIN) are macros Swift cannot import.
static inline int cffmpeg_averror_eof(void) { return AVERROR_EOF; }
static inline int cffmpeg_averror_eagain(void) { return AVERROR(EAGAIN); }
