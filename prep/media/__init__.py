"""The local edge: probing, the mp4 box reader, ffmpeg (one argv builder, one runner), prepare."""
