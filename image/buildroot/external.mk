include $(sort $(wildcard $(BR2_EXTERNAL_EDGEREC_PATH)/package/*/*.mk))
