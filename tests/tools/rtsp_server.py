#!/usr/bin/python3
"""An RTSP server for the end-to-end tests: gst-rtsp-server (apt
gir1.2-gst-rtsp-server-1.0) serving a media file at real-time pace, as a camera
would, on rtsp://127.0.0.1:PORT/cam with basic auth.

    rtsp_server.py PORT FILE USER PASSWORD [h264-aac | h265-pcma]

The file's video and audio are sent without re-encoding: an MP4 with H.264 and
AAC (rtph264pay, rtpmp4gpay), or a QuickTime file with H.265 and G.711 A-law
(rtph265pay, rtppcmapay), as an H.265 camera sends. Prints "ready" when
listening.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port, path, user, password = sys.argv[1:5]
    kind = sys.argv[5] if len(sys.argv) > 5 else "h264-aac"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)

    factory = GstRtspServer.RTSPMediaFactory()
    if kind == "h265-pcma":
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux name=d '
            "d.video_0 ! queue ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1 "
            "d.audio_0 ! queue ! rtppcmapay name=pay1 pt=8 )"
        )
    else:
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux name=d '
            "d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
            "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
        )
    # Every client gets the file from its start, as from a camera that just began.
    factory.set_shared(False)

    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(permissions)

    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit("could not listen")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
